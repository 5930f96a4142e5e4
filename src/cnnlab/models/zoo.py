"""Build zoo models by name."""

import dataclasses
import inspect

from torch import nn

# Importing the family modules registers their models.
from cnnlab.models import alexnet, densenet, dilated, googlenet, highway, lenet, nin  # noqa: F401
from cnnlab.models import preact, resnet, vgg, zfnet  # noqa: F401
from cnnlab.errors import CnnlabError
from cnnlab.models.input_guard import InputGuard
from cnnlab.models.registry import Card, builder, card, resolve


def create(name: str, *, guard: bool = True, **kwargs) -> nn.Module:
    """Build a zoo model by name or alias; kwargs go to its builder (num_classes, in_channels, ...).

    The model carries `model.card`, describing the model as built. With `guard=True` (the default)
    a wrong input shape raises one `CnnlabError` naming the model and the inputs it accepts
    (see `input_guard`); pass `guard=False` for tools that cannot trace hooks (torch.jit.script).
    """
    canonical = resolve(name)
    takes = options(canonical)
    unknown = sorted(set(kwargs) - set(takes))
    if unknown:
        raise CnnlabError(f"{canonical} does not take {', '.join(unknown)}; "
                          f"it takes: {', '.join(takes) or 'no options'}")
    model = builder(canonical)(**kwargs)
    model.card = built_card(card(canonical), kwargs)
    if guard:
        model.register_forward_pre_hook(
            InputGuard(canonical, model.card.input_shape, in_channels_hint="in_channels" in takes)
        )
    return model


def options(name: str) -> list[str]:
    """The keyword options a model's builder takes (num_classes, in_channels, ...), in order."""
    return list(inspect.signature(builder(name)).parameters)


def built_card(reference: Card, kwargs: dict) -> Card:
    """The card of the model `kwargs` build: the registered card when they change nothing it
    states; otherwise classes and input channels updated, and the paper's reference numbers
    (which hold for the default build only) dropped."""
    num_classes = kwargs.get("num_classes", reference.num_classes)
    in_channels = kwargs.get("in_channels", reference.input_shape[0])
    defaults = {"num_classes": reference.num_classes, "in_channels": reference.input_shape[0]}
    if all(defaults.get(key) == value for key, value in kwargs.items()):
        return reference
    return dataclasses.replace(
        reference,
        num_classes=num_classes,
        input_shape=(in_channels, *reference.input_shape[1:]),
        params=None,
        macs=None,
        published_error=None,
    )
