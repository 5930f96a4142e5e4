"""lenet models (being written)."""
