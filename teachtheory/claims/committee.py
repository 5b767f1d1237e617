"""Claims: committee (seed 004)."""
