"""Simulations: ssl."""
