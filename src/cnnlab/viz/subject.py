"""What a viz command looks at: a trained run, or a zoo model with random weights.

Both become a `Subject`: the model in eval mode, its input shape, the normalisation its inputs
were trained with, class names, and where figures go. Commands never care which it was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.run import CONFIG, FIGURES, is_run

# Inputs of a model without a run: ImageNet statistics for colour (what the zoo's papers used),
# a neutral 0.5 for grey.
COLOUR_MEAN, COLOUR_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class Subject:
    model: nn.Module
    name: str  # zoo model name
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    run: Path | None = None
    config: dict | None = None
    native_shape: tuple[int, int, int] | None = None  # the data set's own image size, for runs
    checkpoint: Path | None = None  # the checkpoint folder the weights came from, for runs

    def load_input(self, path: str | os.PathLike, invert: bool = False) -> torch.Tensor:
        """An image file as the model's 1 x C x H x W input, preprocessed as the run's evaluation was."""
        from cnnlab.data.preprocess import load_image

        augment = () if self.native_shape or not self.config else self.config.get("train", {}).get("augment", ())
        return load_image(path, self.input_shape, self.mean, self.std, native_shape=self.native_shape,
                          augment=augment, invert=invert)  # an image folder's run: its own evaluation scale

    def adapt(self, images: np.ndarray) -> torch.Tensor:
        """A data set's uint8 N x C x H x W images as model inputs (evaluation preprocessing)."""
        from cnnlab.data.preprocess import Adapter

        native = tuple(images.shape[1:])
        k = 1 if 1 in (native[0], self.input_shape[0]) else 3  # channels normalised before a grey -> 3 repeat
        return Adapter(native, self.input_shape, self.mean[:k], self.std[:k])(torch.from_numpy(images))

    def out_dir(self, out: str | os.PathLike | None) -> Path:
        """--out, else the run's figures/, else ./figures/<model> for a zoo model."""
        if out is not None:
            return Path(out)
        return self.run / FIGURES if self.run is not None else Path(FIGURES) / self.name

    @property
    def title(self) -> str:
        return f"{self.name} ({self.run.name})" if self.run is not None else f"{self.name} (random weights)"


def open_subject(spec: str | os.PathLike, input_shape: tuple[int, int, int] | None = None, seed: int = 0,
                 which: str = "best") -> Subject:
    """A run folder (its checkpoint `which`) or a zoo model name (random weights from `seed`).

    `input_shape` (C, H, W) overrides the default input of a zoo model; a different C builds the
    model with that many input channels.
    """
    from cnnlab.run.model import load_model

    if is_run(spec):
        if input_shape is not None:
            raise CnnlabError("--input is for zoo models; a run's input shape is fixed by its config.json")
        model, config, checkpoint = load_model(spec, which)
        dataset = config.get("dataset", {})
        shape = tuple(config["input_shape"])
        mean, std = _normalisation(dataset, shape[0])
        classes = [str(c) for c in dataset.get("classes", [])]
        native = tuple(dataset["native_shape"]) if dataset.get("native_shape") else None
        return Subject(model, config["model"], shape, mean, std, classes or _numbered(model, shape), Path(spec), config,
                       native, checkpoint)
    if os.sep in str(spec) or Path(spec).exists():
        raise CnnlabError(f"{spec} is not a cnnlab run (no {CONFIG}); give a run folder or a zoo model name")
    from cnnlab.models import card, create

    model_card = card(str(spec))
    shape = tuple(input_shape or model_card.input_shape)
    kwargs = {"in_channels": shape[0]} if shape[0] != model_card.input_shape[0] else {}
    torch.manual_seed(seed)
    try:
        model = create(str(spec), **kwargs).eval()
        classes = _numbered(model, shape)
    except (TypeError, RuntimeError) as error:
        raise CnnlabError(f"{model_card.name} does not accept input {'x'.join(map(str, shape))} "
                          f"({str(error).splitlines()[0]}); its default is "
                          f"{'x'.join(map(str, model_card.input_shape))}") from None
    mean, std = _normalisation({}, shape[0])
    return Subject(model, model_card.name, shape, mean, std, classes)


def _normalisation(dataset: dict, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if dataset.get("mean") and dataset.get("std"):
        return tuple(dataset["mean"]), tuple(dataset["std"])
    if channels == 3:
        return COLOUR_MEAN, COLOUR_STD
    return (0.5,) * channels, (0.5,) * channels


def _numbered(model: nn.Module, shape) -> list[str]:
    """Class names "0".."K-1" for a model whose classes nobody named."""
    with torch.no_grad():
        classes = model(torch.zeros(1, *shape)).shape[1]
    return [str(k) for k in range(classes)]


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The module called `name` (a state-dict style path such as features.c1); unknown names list
    the convolution layers so the user can pick one."""
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    suffix = [n for n in modules if n.endswith("." + name)]
    if len(suffix) == 1:
        return modules[suffix[0]]
    raise CnnlabError(f"no layer '{name}' in this model; convolution layers: {', '.join(conv_layers(model)) or 'none'}")


def resolve_layer_name(model: nn.Module, name: str) -> str:
    """The full module path for `name` (which may be its last component, e.g. c1 for features.c1)."""
    target = find_layer(model, name)
    return next(n for n, m in model.named_modules() if m is target)


def conv_layers(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
