"""DenseNets (Huang, Liu, van der Maaten & Weinberger 2017): every layer of a dense block reads the
concatenation of all the feature maps before it in that block and adds k new ones (the growth rate).

One `DenseNet` class builds the paper's two tables:

- ImageNet (Table 1): 7×7/2 stem and max-pool, four dense blocks of DenseNet-BC layers (BN-ReLU-conv
  1×1 to 4k maps, then BN-ReLU-conv 3×3 to k), transitions (BN-ReLU-conv 1×1 halving the maps, 2×2
  average pool) between them, BN, ReLU, global average pool, classifier. Layer names are
  torchvision's (`features.denseblock3.denselayer12.conv2`, `features.transition1.conv`), so state
  dicts move between the two unchanged.
- CIFAR (Table 2): a 3×3 stem of 16 maps (2k for DenseNet-BC), three dense blocks at 32×32, 16×16,
  8×8. Plain DenseNet layers are BN-ReLU-conv 3×3 and its transitions keep the channel count;
  DenseNet-BC adds the 1×1 bottleneck and halves the maps at each transition (compression 0.5), as
  the authors' Torch code builds them. Depth L counts the convolutions and the classifier:
  L = 3·n + 4 for n plain layers per block, 6·n + 4 for n BC layers.

Dropout (the paper's 0.2 for the data sets without augmentation) follows every convolution but the
stem when `drop_rate` > 0.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from cnnlab.models.registry import Paper, register
from cnnlab.models.resnet import lua_torch_init

HUANG_2017 = Paper("G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger", 2017,
                   "Densely Connected Convolutional Networks")
BOTTLENECK_FACTOR = 4  # the 1×1 convolution of a BC layer produces 4k maps


def bn_relu_conv(layers: OrderedDict, index: str, in_channels: int, out_channels: int, kernel: int,
                 drop_rate: float) -> None:
    """BN → ReLU → convolution (no bias) [→ dropout], the paper's composite function H, under
    torchvision's names norm{index}, relu{index}, conv{index}."""
    layers[f"norm{index}"] = nn.BatchNorm2d(in_channels)
    layers[f"relu{index}"] = nn.ReLU(inplace=True)
    layers[f"conv{index}"] = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False)
    if drop_rate:
        layers[f"drop{index}"] = nn.Dropout(drop_rate)


class DenseLayer(nn.Sequential):
    """One layer of a dense block: k new maps from everything before it ([BN-ReLU-conv 1×1 4k →] BN-ReLU-conv 3×3 k)."""

    def __init__(self, in_channels: int, growth_rate: int, bottleneck: bool, drop_rate: float):
        layers = OrderedDict()
        if bottleneck:
            bn_relu_conv(layers, "1", in_channels, BOTTLENECK_FACTOR * growth_rate, 1, drop_rate)
            bn_relu_conv(layers, "2", BOTTLENECK_FACTOR * growth_rate, growth_rate, 3, drop_rate)
        else:
            bn_relu_conv(layers, "1", in_channels, growth_rate, 3, drop_rate)
        super().__init__(layers)


class DenseBlock(nn.ModuleDict):
    """`layers` dense layers (denselayer1 …); each reads the concatenation of the block's input and
    every earlier layer's output, and the block returns the concatenation of all of them."""

    def __init__(self, layers: int, in_channels: int, growth_rate: int, bottleneck: bool, drop_rate: float):
        super().__init__({
            f"denselayer{i + 1}": DenseLayer(in_channels + i * growth_rate, growth_rate, bottleneck, drop_rate)
            for i in range(layers)
        })
        self.out_channels = in_channels + layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """Between dense blocks: BN-ReLU-conv 1×1 to `out_channels` [dropout], 2×2 average pool."""

    def __init__(self, in_channels: int, out_channels: int, drop_rate: float):
        layers = OrderedDict()
        bn_relu_conv(layers, "", in_channels, out_channels, 1, drop_rate)
        layers["pool"] = nn.AvgPool2d(2, stride=2)
        super().__init__(layers)


class DenseNet(nn.Module):
    """features (stem, dense blocks, transitions, final BN) → ReLU → global average pool → classifier."""

    def __init__(self, growth_rate: int, block_sizes: tuple[int, ...], stem_width: int, *, imagenet_stem: bool,
                 bottleneck: bool, compression: float, num_classes: int, in_channels: int = 3, drop_rate: float = 0.0):
        super().__init__()
        layers = OrderedDict()
        if imagenet_stem:
            layers["conv0"] = nn.Conv2d(in_channels, stem_width, 7, stride=2, padding=3, bias=False)
            layers["norm0"] = nn.BatchNorm2d(stem_width)
            layers["relu0"] = nn.ReLU(inplace=True)
            layers["pool0"] = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            layers["conv0"] = nn.Conv2d(in_channels, stem_width, 3, padding=1, bias=False)
        channels = stem_width
        for index, size in enumerate(block_sizes, start=1):
            block = DenseBlock(size, channels, growth_rate, bottleneck, drop_rate)
            layers[f"denseblock{index}"] = block
            channels = block.out_channels
            if index < len(block_sizes):
                reduced = int(channels * compression)
                layers[f"transition{index}"] = Transition(channels, reduced, drop_rate)
                channels = reduced
        layers[f"norm{len(block_sizes) + 1}"] = nn.BatchNorm2d(channels)
        self.features = nn.Sequential(layers)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # the paper's 7×7 (ImageNet) or 8×8 (CIFAR) global pool
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(channels, num_classes)
        lua_torch_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.flatten(self.avgpool(self.relu(self.features(x)))))


INIT = ("as the authors' Torch code (fb.resnet.torch's): conv He normal (fan_out), BN weight 1 bias 0, "
        "classifier bias 0")

# Table 1 (ImageNet, all DenseNet-BC): depth: (growth rate k, layers per block, stem width, parameters,
# Table 3 top-1 / top-5 val error: single crop; 10 crops)
IMAGENET = {
    121: (32, (6, 12, 24, 16), 64, 7_978_856, "25.02% / 7.71% (1 crop), 23.61% / 6.66% (10 crops)"),
    169: (32, (6, 12, 32, 32), 64, 14_149_480, "23.80% / 6.85% (1 crop), 22.08% / 5.92% (10 crops)"),
    201: (32, (6, 12, 48, 32), 64, 20_013_928, "22.58% / 6.34% (1 crop), 21.46% / 5.54% (10 crops)"),
    264: (32, (6, 12, 64, 48), 64, 33_337_704, "22.15% / 6.12% (1 crop), 20.80% / 5.29% (10 crops)"),
    161: (48, (6, 12, 36, 24), 96, 28_681_000, None),
}
TORCHVISION = (121, 161, 169, 201)

# Table 2 (CIFAR), a row per network: name: (depth L, growth rate k, BC, parameters,
# C10+ / C10 test error: with the standard augmentation / without it, where dropout 0.2 was used)
CIFAR = {
    "densenet40_k12": (40, 12, False, 1_019_722, "5.24% (C10+), 7.00% (C10)"),
    "densenet100_k12": (100, 12, False, 6_979_642, "4.10% (C10+), 5.77% (C10)"),
    "densenet100_k24": (100, 24, False, 27_249_082, "3.74% (C10+), 5.83% (C10)"),
    "densenet_bc100_k12": (100, 12, True, 769_162, "4.51% (C10+), 5.92% (C10)"),
    "densenet_bc250_k24": (250, 24, True, 15_324_406, "3.62% (C10+), 5.19% (C10)"),
    "densenet_bc190_k40": (190, 40, True, 25_624_430, "3.46% (C10+)"),
}


def _imagenet_builder(k, blocks, stem):
    def build(num_classes: int = 1000, in_channels: int = 3, drop_rate: float = 0.0):
        return DenseNet(k, blocks, stem, imagenet_stem=True, bottleneck=True, compression=0.5,
                        num_classes=num_classes, in_channels=in_channels, drop_rate=drop_rate)

    return build


def _cifar_builder(depth, k, bc):
    per_block = (depth - 4) // (6 if bc else 3)

    def build(num_classes: int = 10, in_channels: int = 3, drop_rate: float = 0.0):
        """drop_rate: dropout after every convolution but the first (the paper's 0.2 without augmentation)."""
        return DenseNet(k, (per_block,) * 3, 2 * k if bc else 16, imagenet_stem=False, bottleneck=bc,
                        compression=0.5 if bc else 1.0, num_classes=num_classes, in_channels=in_channels,
                        drop_rate=drop_rate)

    return build


for _depth, (_k, _blocks, _stem, _params, _error) in IMAGENET.items():
    register(
        f"densenet{_depth}", family="DenseNet", paper=HUANG_2017, input_shape=(3, 224, 224), num_classes=1000,
        params=_params, init=INIT,
        published_error=f"top-1 / top-5 {_error} (ImageNet val; Table 3)" if _error else
        "top-1 22.2% (ImageNet val, 1 crop; the authors' released Torch model, not in the paper)",
        notes=f"DenseNet-BC, k={_k}, dense blocks of {', '.join(map(str, _blocks))} layers, stem of {_stem} maps"
        + ("; state dict interchangeable with torchvision's" if _depth in TORCHVISION else
           "; Table 1's largest column (torchvision has no densenet264)"),
    )(_imagenet_builder(_k, _blocks, _stem))

for _name, (_depth, _k, _bc, _params, _error) in CIFAR.items():
    _per_block = (_depth - 4) // (6 if _bc else 3)
    register(
        _name, family="DenseNet (CIFAR)", paper=HUANG_2017, input_shape=(3, 32, 32), num_classes=10, params=_params,
        published_error=f"{_error}; Table 2", init=INIT,
        notes=f"{'DenseNet-BC' if _bc else 'DenseNet'} (L={_depth}, k={_k}): three dense blocks of {_per_block} "
        + ("BC layers (1×1 to 4k, 3×3 to k), transitions halving the maps" if _bc else
           "layers (3×3 to k), transitions keeping the maps")
        + f", stem of {2 * _k if _bc else 16} maps",
    )(_cifar_builder(_depth, _k, _bc))
