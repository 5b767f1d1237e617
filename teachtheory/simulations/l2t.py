"""Simulations: l2t."""
