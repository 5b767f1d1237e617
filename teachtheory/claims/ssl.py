"""Claims: ssl."""
