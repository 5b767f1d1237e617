"""Closed forms of the source papers: pure batched functions, with sympy twins where derived."""
