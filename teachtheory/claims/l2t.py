"""Claims: l2t."""
