"""Teachability theorems of LAST (Thm 1-3) and DHT (Thm 1)."""
