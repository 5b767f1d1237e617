"""Claims: relu (seed 004)."""
