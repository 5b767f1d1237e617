"""Simulations: committee (seed 004)."""
