"""nin models (being written)."""
