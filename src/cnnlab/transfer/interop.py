"""Conversion between cnnlab's zoo and torchvision's models.

The zoo models below have torchvision's state-dict layout key for key, so converting is a matter
of building the other side's model with the same class count and loading the weights (strictly:
every tensor must find its place). The architecture of a torchvision model, or of a bare state
dict, is recognised by comparing its keys and shapes with the zoo's models, not by its class name.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.transfer.anatomy import head_keys, meta_state_shapes

# zoo name -> torchvision name
TORCHVISION_NAMES = {
    "alexnet_torchvision": "alexnet",
    **{f"vgg_{c}{bn}": f"vgg{depth}{bn}" for c, depth in zip("abde", (11, 13, 16, 19)) for bn in ("", "_bn")},
    "googlenet_torchvision": "googlenet",
    **{f"resnet{depth}": f"resnet{depth}" for depth in (18, 34, 50, 101, 152)},
}


def match_architecture(state: dict[str, torch.Tensor], candidates=TORCHVISION_NAMES, fixed: dict | None = None):
    """(zoo name, builder kwargs) of the model whose state dict has exactly `state`'s keys and shapes.

    The class count is read from the head; a GoogLeNet state with auxiliary classifiers gets
    `aux_logits=True`, one without gets `aux_logits=False`; `fixed` adds known builder arguments.
    """
    for name in candidates:
        for extra in _variants(name):
            extra = {**extra, **(fixed or {})}
            if meta_state_shapes(name, extra).keys() != state.keys():  # cheap test first: one meta build
                continue
            heads = head_keys(name, extra)
            kwargs = {**extra, "num_classes": state[heads[0]].shape[0]}
            shapes = meta_state_shapes(name, kwargs)
            if shapes.keys() == state.keys() and all(shapes[k] == state[k].shape for k in shapes):
                return name, kwargs
    raise CnnlabError(
        f"these weights ({len(state)} tensors) match none of the zoo models {', '.join(candidates)}: "
        "name the architecture with --model"
    )


def _variants(name: str) -> list[dict]:
    return [{"aux_logits": True}, {"aux_logits": False}] if name == "googlenet_torchvision" else [{}]


def from_torchvision(model: nn.Module) -> nn.Module:
    """The zoo model equal to a torchvision model (AlexNet, VGG 11/13/16/19 with or without BN,
    GoogLeNet, ResNet 18-152), with its weights: the same outputs for the same input."""
    from cnnlab.models import create

    if getattr(model, "transform_input", False):
        raise CnnlabError(
            "this torchvision GoogLeNet re-normalises its input (transform_input=True), which the zoo model "
            "does not: set model.transform_input = False and feed it inputs normalised as it expects"
        )
    state = model.state_dict()
    name, kwargs = match_architecture(state)
    ours = create(name, **kwargs)
    ours.load_state_dict(state)
    return ours.train(model.training)


def to_torchvision(model: nn.Module) -> nn.Module:
    """The torchvision model equal to a compatible zoo model (see TORCHVISION_NAMES), with its weights."""
    import torchvision

    name = getattr(getattr(model, "card", None), "name", None)
    if name not in TORCHVISION_NAMES:
        known = ", ".join(TORCHVISION_NAMES)
        raise CnnlabError(f"{name or type(model).__name__} has no torchvision twin; these do: {known}")
    state = model.state_dict()
    _, kwargs = match_architecture(state, [name])
    if name == "googlenet_torchvision":
        kwargs = {**kwargs, "init_weights": False, "transform_input": False}
    theirs = torchvision.models.get_model(TORCHVISION_NAMES[name], weights=None, **kwargs)
    theirs.load_state_dict(state)
    return theirs.train(model.training)
