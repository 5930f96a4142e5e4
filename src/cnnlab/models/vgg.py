"""vgg models (being written)."""
