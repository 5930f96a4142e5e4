"""highway models (being written)."""
