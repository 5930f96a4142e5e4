"""Where a zoo model's parts are: its classifier head, its first convolution, its layers by name.

The head is found by asking the builder, not by guessing from names: the state-dict entries whose
shape changes with `num_classes` are the classifier(s) (one `fc` in a ResNet, the last 1x1
convolution in NIN, the main and auxiliary classifiers in GoogLeNet). Models are built on the
meta device for this (`cnnlab.models.probe`), so even VGG costs no memory.
"""

from __future__ import annotations

import difflib
from functools import lru_cache

import torch
from torch import nn

from cnnlab.errors import CnnlabError


def meta_state_shapes(name: str, kwargs: dict) -> dict[str, torch.Size]:
    """Shapes of every state-dict entry of zoo model `name` built with `kwargs`, allocating nothing."""
    return dict(_meta_state_shapes(name, tuple(sorted(kwargs.items()))))


@lru_cache(maxsize=None)
def _meta_state_shapes(name: str, kwargs: tuple) -> tuple:
    from cnnlab.models import create
    from cnnlab.models.probe import build_on_meta

    model = build_on_meta(lambda: create(name, guard=False, **dict(kwargs)))
    return tuple((key, value.shape) for key, value in model.state_dict().items())


def head_keys(name: str, kwargs: dict) -> list[str]:
    """State-dict keys of the classifier head: those whose shape depends on `num_classes`."""
    base = {k: v for k, v in kwargs.items() if k != "num_classes"}
    seven, eleven = meta_state_shapes(name, {**base, "num_classes": 7}), meta_state_shapes(name, {**base, "num_classes": 11})
    return [key for key in seven if seven[key] != eleven[key]]


def owner(key: str) -> str:
    """The module that owns a state-dict entry: 'layer4.1.conv2.weight' -> 'layer4.1.conv2'."""
    return key.rpartition(".")[0]


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """(name, module) of the convolution that reads the image: the first Conv2d in module order."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise CnnlabError(f"{type(model).__name__} has no convolution, so its input channels cannot be adapted")


def layer_names(model: nn.Module) -> list[str]:
    """Names of all submodules in the order they were registered (which is forward order in the zoo)."""
    return [name for name, _ in model.named_modules() if name]


def require_layer(model: nn.Module, layer: str) -> str:
    """`layer` if the model has a submodule of that name, else a one-line error with suggestions."""
    names = layer_names(model)
    if layer in names:
        return layer
    close = difflib.get_close_matches(layer, names, n=3, cutoff=0.5)
    tops = sorted({name.split(".")[0] for name in names}, key=[n.split(".")[0] for n in names].index)
    hint = f"did you mean {', '.join(close)}?" if close else f"top-level layers: {', '.join(tops)}"
    raise CnnlabError(f"{type(model).__name__} has no layer '{layer}': {hint} ('cnnlab show MODEL' lists them all)")


def keys_from(model: nn.Module, layer: str) -> list[str]:
    """Parameter names of `layer` and of every module registered after it: what `--unfreeze-from` trains."""
    require_layer(model, layer)
    keys, reached = [], False
    for name, module in model.named_modules():
        reached = reached or name == layer
        if reached:
            keys += [f"{name}.{p}" if name else p for p, _ in module.named_parameters(recurse=False)]
    if not keys:
        raise CnnlabError(f"no layer with weights from '{layer}' on: name an earlier layer")
    return keys
