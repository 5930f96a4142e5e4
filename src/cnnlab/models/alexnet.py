"""alexnet models (being written)."""
