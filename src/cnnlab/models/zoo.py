"""Build zoo models by name."""

from torch import nn

# Importing the family modules registers their models.
from cnnlab.models import alexnet, googlenet, highway, lenet, nin, resnet, vgg  # noqa: F401
from cnnlab.models.registry import builder, card


def create(name: str, **kwargs) -> nn.Module:
    """Build a zoo model by name or alias; kwargs go to its builder (num_classes, in_channels, ...)."""
    model = builder(name)(**kwargs)
    model.card = card(name)
    return model
