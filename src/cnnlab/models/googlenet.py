"""googlenet models (being written)."""
