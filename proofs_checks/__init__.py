"""The claim families of teachtheory: one module per family, named after its claims' id prefix.

Each module states its claims (source, LaTeX statement, assumptions checked in code), holds the
sympy derivations and the numeric checks, and registers the claims on import. The modules are found
through the ``teachtheory.claims`` entry-point group (see ``pyproject.toml``); the library itself never
imports this package.
"""
