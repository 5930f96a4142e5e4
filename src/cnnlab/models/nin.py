"""Network in Network (Lin, Chen & Yan 2013): mlpconv blocks and global average pooling."""

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.registry import Paper, register

LIN_2013 = Paper("M. Lin, Q. Chen, S. Yan", 2013, "Network In Network")


def mlpconv(in_channels: int, widths: tuple[int, int, int], kernel_size: int) -> nn.Sequential:
    """One mlpconv layer: a k x k convolution followed by a two-layer MLP shared over positions
    (two 1x1 convolutions, the authors' "cccp" layers), ReLU after each."""
    conv_width, mlp1_width, mlp2_width = widths
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(in_channels, conv_width, kernel_size, padding=kernel_size // 2),
        relu=nn.ReLU(inplace=True),
        mlp1=nn.Conv2d(conv_width, mlp1_width, kernel_size=1),
        relu1=nn.ReLU(inplace=True),
        mlp2=nn.Conv2d(mlp1_width, mlp2_width, kernel_size=1),
        relu2=nn.ReLU(inplace=True),
    ))


class NINCifar(nn.Module):
    """The CIFAR-10 network: three mlpconv layers, pooling 3/2 (ceil mode, as the authors' Caffe
    model: 32 -> 16 -> 8) and dropout 0.5 between them, then global average pooling of one map
    per class: no fully-connected layer at all."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(OrderedDict(
            mlpconv1=mlpconv(in_channels, (192, 160, 96), kernel_size=5),
            pool1=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            drop1=nn.Dropout(dropout),
            mlpconv2=mlpconv(96, (192, 192, 192), kernel_size=5),
            pool2=nn.AvgPool2d(kernel_size=3, stride=2, ceil_mode=True),
            drop2=nn.Dropout(dropout),
            mlpconv3=mlpconv(192, (192, 192, num_classes), kernel_size=3),
            gap=nn.AdaptiveAvgPool2d(1),
        ))
        self.reset_parameters()

    def reset_parameters(self):
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x):
        return torch.flatten(self.features(x), 1)


@register(
    "nin_cifar",
    family="NIN",
    paper=LIN_2013,
    input_shape=(3, 32, 32),
    num_classes=10,
    params=966_986,
    published_error="CIFAR-10 test error 10.41% (8.81% with translation and flipping augmentation)",
    init="the paper states none; Kaiming-normal (fan_in, ReLU), biases 0, so it trains from scratch "
    "with plain SGD",
    notes="Widths 192-160-96 / 192-192-192 / 192-192-classes (kernels 5, 5, 3) as in the authors' "
    "released CIFAR-10 model; max-pool after block 1, average-pool after block 2, dropout 0.5 after "
    "both; ReLU also after the last 1x1 layer, before global average pooling, as in that model.",
)
def nin_cifar(num_classes: int = 10, in_channels: int = 3, dropout: float = 0.5) -> nn.Module:
    return NINCifar(num_classes, in_channels, dropout)
