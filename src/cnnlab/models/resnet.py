"""resnet models (being written)."""
