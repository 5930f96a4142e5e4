"""VGG: the configurations of Simonyan & Zisserman's Table 1 as data, one builder for all.

Layer indices are torchvision's, so A/B/D/E (and their batch-norm versions) load
torchvision's vgg11/13/16/19(_bn) state dicts and back.
"""

from functools import partial

import torch
from torch import nn

from cnnlab.models.layers import paper_lrn
from cnnlab.models.registry import Paper, register

SIMONYAN_2014 = Paper(
    "K. Simonyan, A. Zisserman", 2014, "Very Deep Convolutional Networks for Large-Scale Image Recognition"
)

# Table 1 of the paper, in its own notation: conv<kernel>-<channels>, LRN, maxpool.
# (Every convolution has stride 1 and "same" padding, each followed by ReLU; maxpool is 2x2/2.)
CONFIGS = {
    "A": ["conv3-64", "maxpool",
          "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "maxpool",
          "conv3-512", "conv3-512", "maxpool",
          "conv3-512", "conv3-512", "maxpool"],
    "A-LRN": ["conv3-64", "LRN", "maxpool",
              "conv3-128", "maxpool",
              "conv3-256", "conv3-256", "maxpool",
              "conv3-512", "conv3-512", "maxpool",
              "conv3-512", "conv3-512", "maxpool"],
    "B": ["conv3-64", "conv3-64", "maxpool",
          "conv3-128", "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "maxpool",
          "conv3-512", "conv3-512", "maxpool",
          "conv3-512", "conv3-512", "maxpool"],
    "C": ["conv3-64", "conv3-64", "maxpool",
          "conv3-128", "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "conv1-256", "maxpool",
          "conv3-512", "conv3-512", "conv1-512", "maxpool",
          "conv3-512", "conv3-512", "conv1-512", "maxpool"],
    "D": ["conv3-64", "conv3-64", "maxpool",
          "conv3-128", "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "conv3-256", "maxpool",
          "conv3-512", "conv3-512", "conv3-512", "maxpool",
          "conv3-512", "conv3-512", "conv3-512", "maxpool"],
    "E": ["conv3-64", "conv3-64", "maxpool",
          "conv3-128", "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "conv3-256", "conv3-256", "maxpool",
          "conv3-512", "conv3-512", "conv3-512", "conv3-512", "maxpool",
          "conv3-512", "conv3-512", "conv3-512", "conv3-512", "maxpool"],
}


def make_features(config: list[str], in_channels: int, batch_norm: bool) -> nn.Sequential:
    """Turn a Table 1 column into layers: conv (+ BN) + ReLU per conv entry, as torchvision does."""
    layers: list[nn.Module] = []
    channels = in_channels
    for entry in config:
        if entry == "maxpool":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif entry == "LRN":
            layers.append(paper_lrn(size=5, alpha=1e-4, beta=0.75, k=2))  # "the parameters of Krizhevsky et al."
        else:
            kernel, width = (int(v) for v in entry.removeprefix("conv").split("-"))
            layers.append(nn.Conv2d(channels, width, kernel_size=kernel, padding=kernel // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            channels = width
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """Conv stack of one configuration, then FC-4096, FC-4096 (dropout 0.5 after each), FC-classes.

    An adaptive average pool to 7x7 (torchvision's) sits before the classifier: at the paper's
    224x224 input it is the identity; it lets smaller inputs through.
    """

    def __init__(self, config: str, num_classes: int = 1000, in_channels: int = 3,
                 batch_norm: bool = False, dropout: float = 0.5):
        super().__init__()
        self.features = make_features(CONFIGS[config], in_channels, batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        self.reset_parameters()

    def reset_parameters(self):
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def vgg(config: str, batch_norm: bool = False, num_classes: int = 1000, in_channels: int = 3,
        dropout: float = 0.5) -> nn.Module:
    return VGG(config, num_classes, in_channels, batch_norm, dropout)


INIT = (
    "as torchvision: conv Kaiming-normal (fan_out, ReLU), linear N(0, 0.01), biases 0, BN weight 1. "
    "The paper trained A from N(0, variance 1e-2) with zero biases and started B-E from A's first four "
    "conv and three FC layers; it notes Glorot init works without that pre-training"
)
# name, Table 1 column, aliases, exact parameters, Table 3 top-1/top-5 (val, single scale S=Q=256)
VARIANTS = [
    ("vgg_a", "A", ("vgg11",), 132_863_336, "29.6% / 10.4%"),
    ("vgg_a_lrn", "A-LRN", (), 132_863_336, "29.7% / 10.5%"),
    ("vgg_b", "B", ("vgg13",), 133_047_848, "28.7% / 9.9%"),
    ("vgg_c", "C", (), 133_638_952, "28.1% / 9.4%"),
    ("vgg_d", "D", ("vgg16",), 138_357_544, "27.0% / 8.8%"),
    ("vgg_e", "E", ("vgg19",), 143_667_240, "27.3% / 9.0%"),
]
# the batch-norm versions (not in the paper): name, column, aliases, parameters, torchvision's error
BN_VARIANTS = [
    ("vgg_a_bn", "A", ("vgg11_bn",), 132_868_840, "29.63% / 10.19%"),
    ("vgg_b_bn", "B", ("vgg13_bn",), 133_053_736, "28.41% / 9.63%"),
    ("vgg_d_bn", "D", ("vgg16_bn",), 138_365_992, "26.64% / 8.48%"),
    ("vgg_e_bn", "E", ("vgg19_bn",), 143_678_248, "25.78% / 8.16%"),
]


def _register_all() -> None:
    for name, config, aliases, params, error in VARIANTS:
        register(
            name, aliases=aliases, family="VGG", paper=SIMONYAN_2014, input_shape=(3, 224, 224),
            num_classes=1000, params=params, init=INIT,
            published_error=f"top-1 / top-5 {error} (ILSVRC-2012 val, single scale 256, Table 3)",
            notes=f"Configuration {config} of Table 1"
            + (f"; state-dict compatible with torchvision's {aliases[0]}" if aliases else "") + ".",
        )(partial(vgg, config, False))
    for name, config, aliases, params, error in BN_VARIANTS:
        register(
            name, aliases=aliases, family="VGG", paper=SIMONYAN_2014, input_shape=(3, 224, 224),
            num_classes=1000, params=params, init=INIT,
            published_error=f"top-1 / top-5 {error} (torchvision IMAGENET1K_V1 weights, ImageNet val)",
            notes=f"Configuration {config} of Table 1 with BatchNorm after every convolution (Ioffe & "
            f"Szegedy 2015; not in the VGG paper); state-dict compatible with torchvision's {aliases[0]}.",
        )(partial(vgg, config, True))


_register_all()
