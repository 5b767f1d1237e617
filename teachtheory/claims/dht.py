"""Claims of data hallucination teaching (DHT, seed 000)."""
