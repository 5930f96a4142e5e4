"""Networks built from scratch layers, with the zoo's layer names so weights move both ways.

Each builder takes the zoo builder's arguments (a run's config.json "model_kwargs" builds its
scratch twin), plus `seed` for the initialisation and `conv_method`.
"""

from __future__ import annotations

import inspect

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.scratch.graph import Graph, Sequential
from cnnlab.scratch.layers import (
    Add,
    AvgPool2d,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Layer,
    Linear,
    MaxPool2d,
    ReLU,
    ZeroPadShortcut,
)
from cnnlab.scratch.norm import BatchNorm2d


def lenet5(num_classes: int = 10, in_channels: int = 1, seed: int | None = None, conv_method: str = "im2col") -> Sequential:
    """The zoo's `lenet5` (cnnlab/models/lenet.py): 1×32×32 → C1 6@5×5 → ReLU → max 2 → C3 16@5×5
    → ReLU → max 2 → F5 400→120 → ReLU → F6 84 → ReLU → output. 61,706 parameters at the defaults."""
    rng = np.random.default_rng(seed)
    return Sequential(
        ("features", Sequential(
            ("c1", Conv2d(in_channels, 6, 5, method=conv_method, input_grad=False, rng=rng)),
            ("relu1", ReLU()),
            ("s2", MaxPool2d(2)),
            ("c3", Conv2d(6, 16, 5, method=conv_method, rng=rng)),
            ("relu3", ReLU()),
            ("s4", MaxPool2d(2)),
        )),
        ("flatten", Flatten()),
        ("classifier", Sequential(
            ("f5", Linear(16 * 5 * 5, 120, rng=rng)),
            ("relu5", ReLU()),
            ("f6", Linear(120, 84, rng=rng)),
            ("relu6", ReLU()),
            ("output", Linear(84, num_classes, rng=rng)),
        )),
    )


def he_normal(model: Layer, rng: np.random.Generator, mode: str) -> None:
    """Every convolution's weights from N(0, 2/fan) (He et al. 2015b), fan = in or out channels × k²;
    biases 0. Batch norm keeps γ = 1, β = 0 and the Linear layers torch's default, as the zoo."""
    for _, layer in model.leaves():
        if isinstance(layer, Conv2d):
            w = layer.weight.data
            fan = (w.shape[1] if mode == "fan_in" else w.shape[0]) * w.shape[2] * w.shape[3]
            layer.weight.data = (rng.standard_normal(w.shape) * np.sqrt(2.0 / fan)).astype(np.float32)
            if layer.bias is not None:
                layer.bias.data[:] = 0


def basic_block(in_channels: int, planes: int, stride: int, residual: bool, conv_method: str, rng) -> Graph:
    """ResNet's two-layer block, out = ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x)); plain: no shortcut.
    The shortcut is the identity, or option A (`downsample`) where the stage halves the size."""
    def conv3x3(c_in, c_out, s):
        return Conv2d(c_in, c_out, 3, s, 1, bias=False, method=conv_method, rng=rng)

    body = [
        ("conv1", conv3x3(in_channels, planes, stride)),
        ("bn1", BatchNorm2d(planes)),
        ("relu1", ReLU()),
        ("conv2", conv3x3(planes, planes, 1)),
        ("bn2", BatchNorm2d(planes)),
    ]
    if not residual:
        return Graph(*body, ("relu2", ReLU()))
    if stride == 1 and in_channels == planes:
        return Graph(*body, ("add", Add(), "bn2", "input"), ("relu2", ReLU()))
    return Graph(*body, ("downsample", ZeroPadShortcut(stride, planes - in_channels), "input"),
                 ("add", Add(), "bn2", "downsample"), ("relu2", ReLU()))


def cifar_resnet(depth: int, residual: bool = True, num_classes: int = 10, in_channels: int = 3, shortcut: str | None = "A",
                 seed: int | None = None, conv_method: str = "im2col") -> Sequential:
    """The zoo's CIFAR ResNets (He et al. 2015, §4.2): 3×3 conv 16 → three stages of n blocks at
    16/32/64 filters (depth 6n + 2) → global average pool → fc. `residual=False`: the plain twin."""
    if residual and shortcut != "A":
        raise CnnlabError(f"the scratch engine has the option-A shortcut (zero padding) only, not {shortcut!r}: "
                          "option B/C's 1×1 projection shortcuts are not built from scratch")
    rng = np.random.default_rng(seed)
    layers = [("conv1", Conv2d(in_channels, 16, 3, 1, 1, bias=False, method=conv_method, input_grad=False, rng=rng)),
              ("bn1", BatchNorm2d(16)), ("relu", ReLU())]
    channels = 16
    for index, planes in enumerate((16, 32, 64)):
        blocks = []
        for position in range((depth - 2) // 6):
            stride = 2 if index > 0 and position == 0 else 1
            blocks.append((str(position), basic_block(channels, planes, stride, residual, conv_method, rng)))
            channels = planes
        layers.append((f"layer{index + 1}", Sequential(*blocks)))
    layers += [("avgpool", GlobalAvgPool2d()), ("flatten", Flatten()), ("fc", Linear(64, num_classes, rng=rng))]
    model = Sequential(*layers)
    he_normal(model, rng, "fan_out")
    return model


def mlpconv(in_channels: int, widths: tuple[int, int, int], kernel_size: int, conv_method: str, rng, first=False) -> Sequential:
    """NIN's mlpconv layer: a k×k convolution, then two 1×1 convolutions (an MLP shared by every
    position), ReLU after each."""
    conv_width, mlp1_width, mlp2_width = widths
    return Sequential(
        ("conv", Conv2d(in_channels, conv_width, kernel_size, padding=kernel_size // 2, method=conv_method,
                        input_grad=not first, rng=rng)),
        ("relu", ReLU()),
        ("mlp1", Conv2d(conv_width, mlp1_width, 1, method=conv_method, rng=rng)),
        ("relu1", ReLU()),
        ("mlp2", Conv2d(mlp1_width, mlp2_width, 1, method=conv_method, rng=rng)),
        ("relu2", ReLU()),
    )


def nin_cifar(num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5, seed: int | None = None,
              conv_method: str = "im2col") -> Sequential:
    """The zoo's `nin_cifar` (Lin et al. 2013): three mlpconv layers, max and average pooling 3/2 in
    ceil mode, dropout, and the global-pooling head: the last mlpconv makes one map per class and
    its mean is the class score, with no fully connected layer."""
    rng = np.random.default_rng(seed)
    model = Sequential(
        ("features", Sequential(
            ("mlpconv1", mlpconv(in_channels, (192, 160, 96), 5, conv_method, rng, first=True)),
            ("pool1", MaxPool2d(3, 2, ceil_mode=True)),
            ("drop1", Dropout(dropout, rng=rng)),
            ("mlpconv2", mlpconv(96, (192, 192, 192), 5, conv_method, rng)),
            ("pool2", AvgPool2d(3, 2, ceil_mode=True)),
            ("drop2", Dropout(dropout, rng=rng)),
            ("mlpconv3", mlpconv(192, (192, 192, num_classes), 3, conv_method, rng)),
            ("gap", GlobalAvgPool2d()),
        )),
        ("flatten", Flatten()),
    )
    he_normal(model, rng, "fan_in")
    return model


def _cifar_builder(depth: int, residual: bool):
    def build(num_classes: int = 10, in_channels: int = 3, shortcut: str | None = "A", seed: int | None = None,
              conv_method: str = "im2col") -> Sequential:
        return cifar_resnet(depth, residual, num_classes, in_channels, shortcut, seed, conv_method)

    build.__doc__ = f"The zoo's `{'resnet' if residual else 'plain'}{depth}`: {cifar_resnet.__doc__.splitlines()[0]}"
    return build


CIFAR_DEPTHS = (20, 32, 44, 56, 110)  # the zoo's CIFAR nets that have a plain twin
MODELS = {
    "lenet5": lenet5,
    **{f"resnet{depth}": _cifar_builder(depth, True) for depth in CIFAR_DEPTHS},
    **{f"plain{depth}": _cifar_builder(depth, False) for depth in CIFAR_DEPTHS},
    "nin_cifar": nin_cifar,
}
INPUT_SIZE = 32  # every model here takes 32×32 images (MNIST is padded to it, as LeCun et al. did)


def require_model(name: str) -> None:
    """One line listing the models the engine has, for a name it does not."""
    if name not in MODELS:
        raise CnnlabError(f"the scratch engine has no model {name!r}; it builds: {', '.join(MODELS)}")


def build(name: str, **kwargs) -> Sequential:
    """A scratch model by its zoo name and the zoo builder's arguments; a model or an argument the
    engine lacks is one line saying what it has."""
    require_model(name)
    try:
        inspect.signature(MODELS[name]).bind(**kwargs)
    except TypeError as error:
        raise CnnlabError(f"the scratch {name} cannot take {kwargs} ({error}): it builds the zoo model's "
                          f"default layers only") from None
    return MODELS[name](**kwargs)


def check_input(model: Layer, name: str, shape: tuple) -> np.ndarray:
    """Run one image of `shape` (C×H×W, zeros) through `model` in evaluation mode, so a shape it
    cannot take fails now in one line, not after the data is loaded; returns the logits."""
    training = model.training
    try:
        return model.eval()(np.zeros((1, *shape), np.float32))
    except CnnlabError as error:
        raise CnnlabError(f"{name} cannot take {'×'.join(map(str, shape))} input: {error}") from None
    finally:
        model.train(training)
