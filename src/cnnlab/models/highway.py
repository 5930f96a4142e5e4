"""Highway networks (Srivastava, Greff & Schmidhuber 2015): y = H(x)·T(x) + x·(1 − T(x)).

H is an ordinary layer (affine + ReLU), T = σ(W_T x + b_T) the transform gate and 1 − T the carry
gate. With b_T initialised negative, T starts small and every layer starts close to the identity,
so signals and gradients cross very deep stacks; the network learns where to transform.

- `highway_fc`: the paper's depth study on MNIST (Section 4.1, Fig. 1): a plain fully connected layer,
  then depth − 1 highway layers of 50 units, then the softmax layer; `plain_fc` is the same stack of
  plain layers of 71 units (about the same ~5000 parameters per layer).
- `highway_conv`: the paper's 19-layer convolutional highway network for CIFAR-10 (Table 2: 2.3M
  parameters, 7.54% error), layer for layer as in the authors' released Caffe configuration.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from cnnlab.errors import CnnlabError
from cnnlab.models.registry import Paper, register

SRIVASTAVA_2015 = Paper("R. K. Srivastava, K. Greff, J. Schmidhuber", 2015, "Training Very Deep Networks")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
MNIST_FEATURES = 28 * 28


class Highway(nn.Module):
    """One highway layer around any shape-preserving `transform` (H's affine part) and `gate` (T's)."""

    def __init__(self, transform: nn.Module, gate: nn.Module, activation: str = "relu", gate_bias: float = -2.0):
        super().__init__()
        self.transform = transform
        self.activation = ACTIVATIONS[activation]()
        self.gate = gate
        nn.init.constant_(self.gate.bias, gate_bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.activation(self.transform(x))
        t = torch.sigmoid(self.gate(x))
        return h * t + x * (1 - t)


def highway_linear(width: int, activation: str, gate_bias: float) -> Highway:
    return Highway(nn.Linear(width, width), nn.Linear(width, width), activation, gate_bias)


def highway_conv3x3(channels: int, gate_bias: float) -> Highway:
    transform, gate = (nn.Conv2d(channels, channels, 3, padding=1) for _ in range(2))
    return Highway(transform, gate, "relu", gate_bias)


def plain_linear(width: int, activation: str) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), ACTIVATIONS[activation]())


def caffe_xavier_init(model: nn.Module) -> None:
    """The authors' Caffe filler 'xavier' (uniform within ±sqrt(3 / fan_in)), zero biases; the
    transform-gate biases keep the negative value `Highway` gave them."""
    gates = {module.gate for module in model.modules() if isinstance(module, Highway)}
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_uniform_(module.weight, nonlinearity="linear")  # gain 1: sqrt(3 / fan_in)
            if module not in gates:
                nn.init.zeros_(module.bias)


def fc_network(depth: int, width: int, in_channels: int, num_classes: int, activation: str, hidden) -> nn.Sequential:
    """flatten → fc1 (plain) → fc2 … fc{depth} (`hidden()`) → classifier."""
    if depth < 1:
        raise CnnlabError(f"depth counts the hidden layers and must be at least 1, got {depth}")
    if activation not in ACTIVATIONS:
        raise CnnlabError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    layers = OrderedDict(flatten=nn.Flatten(1))
    layers["fc1"] = nn.Sequential(nn.Linear(in_channels * MNIST_FEATURES, width), ACTIVATIONS[activation]())
    for index in range(2, depth + 1):
        layers[f"fc{index}"] = hidden()
    layers["classifier"] = nn.Linear(width, num_classes)
    model = nn.Sequential(layers)
    caffe_xavier_init(model)
    return model


FC_NOTES = ("Section 4.1: first layer plain, the rest {kind}, then softmax; depth = hidden layers (paper: 10, 20, "
            "50, 100); the paper searched ReLU/tanh and the gate bias in [-1, -10] per run, we default to ReLU, -2")


@register(
    "highway_fc", family="Highway", paper=SRIVASTAVA_2015, input_shape=(1, 28, 28), num_classes=10,
    params=(784 * 50 + 50) + 9 * 2 * (50 * 50 + 50) + (50 * 10 + 10),
    init="xavier uniform sqrt(3/fan_in) (the authors' Caffe filler), biases 0, transform-gate bias -2",
    notes=FC_NOTES.format(kind="highway layers of 50 units (2 × 2,550 parameters each)"),
)
def highway_fc(num_classes: int = 10, in_channels: int = 1, depth: int = 10, width: int = 50,
               activation: str = "relu", gate_bias: float = -2.0) -> nn.Sequential:
    return fc_network(depth, width, in_channels, num_classes, activation,
                      lambda: highway_linear(width, activation, gate_bias))


@register(
    "plain_fc", family="Highway (plain)", paper=SRIVASTAVA_2015, input_shape=(1, 28, 28), num_classes=10,
    params=(784 * 71 + 71) + 9 * (71 * 71 + 71) + (71 * 10 + 10),
    init="xavier uniform sqrt(3/fan_in), biases 0",
    notes=FC_NOTES.format(kind="plain layers of 71 units (5,112 parameters each)"),
)
def plain_fc(num_classes: int = 10, in_channels: int = 1, depth: int = 10, width: int = 71,
             activation: str = "relu") -> nn.Sequential:
    return fc_network(depth, width, in_channels, num_classes, activation, lambda: plain_linear(width, activation))


# The authors' cifar10-19layers configuration: (width, highway layers) per stage, each stage opened
# by dropout 0.2 and a plain 3×3 convolution + ReLU, 2×2 max-pools between stages; then a 1×1
# convolution to 100 maps + ReLU, global average pool, dropout 0.2, the classifier.
CIFAR10_19_LAYERS = ((32, 4), (80, 5), (128, 5))
HEAD_MAPS = 100


@register(
    "highway_conv", family="Highway", paper=SRIVASTAVA_2015, input_shape=(3, 32, 32), num_classes=10,
    params=2_256_838, published_error="7.54% best, 7.72±0.16% mean (CIFAR-10 test, 19 layers; Table 2)",
    init="xavier uniform sqrt(3/fan_in) (the authors' Caffe filler), biases 0, transform-gate bias -2 "
    "(their CIFAR-10 configuration)",
    notes="19 weight layers: 3 plain 3×3 convs opening stages of 4, 5, 5 highway 3×3 convs at 32/80/128 maps, "
    "1×1 conv 100, classifier; dropout 0.2 before each stage and the classifier; as the authors' released "
    "Caffe configuration (github.com/flukeskywalker/highway-networks)",
)
def highway_conv(num_classes: int = 10, in_channels: int = 3, gate_bias: float = -2.0) -> nn.Sequential:
    layers = OrderedDict()
    channels, index = in_channels, 0
    for stage, (width, highways) in enumerate(CIFAR10_19_LAYERS, start=1):
        if stage > 1:
            layers[f"pool{stage - 1}"] = nn.MaxPool2d(2, stride=2)
        layers[f"drop{stage}"] = nn.Dropout(0.2)
        index += 1
        layers[f"conv{index}"] = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True))
        for _ in range(highways):
            index += 1
            layers[f"conv{index}"] = highway_conv3x3(width, gate_bias)
        channels = width
    index += 1
    layers[f"conv{index}"] = nn.Sequential(nn.Conv2d(channels, HEAD_MAPS, 1), nn.ReLU(inplace=True))
    layers["avgpool"] = nn.AdaptiveAvgPool2d(1)  # the authors' 8×8 average pool at 32×32
    layers["flatten"] = nn.Flatten(1)
    layers[f"drop{len(CIFAR10_19_LAYERS) + 1}"] = nn.Dropout(0.2)
    layers["classifier"] = nn.Linear(HEAD_MAPS, num_classes)
    model = nn.Sequential(layers)
    caffe_xavier_init(model)
    return model
