"""Simulations: relu (seed 004)."""
