"""Inception modules (Szegedy et al. 2014, Fig. 2), the building blocks of GoogLeNet.

Both modules take their widths in the order of the columns of the paper's Table 1
(#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj), so a GoogLeNet is a table of numbers.
Branch names are torchvision's (branch1 … branch4): the batch-norm variant loads its weights.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn


class ConvReLU(nn.Sequential):
    """Convolution → ReLU, the paper's unit (convolution with bias); with `batch_norm` it is
    torchvision's BasicConv2d instead: convolution without bias → BatchNorm (eps 1e-3) → ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 batch_norm: bool = False):
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=not batch_norm)
        layers = OrderedDict(conv=conv)
        if batch_norm:
            layers["bn"] = nn.BatchNorm2d(out_channels, eps=1e-3)
        layers["relu"] = nn.ReLU(inplace=True)
        super().__init__(layers)


class Branches(nn.Module):
    """Parallel branches whose outputs are concatenated along the channels ("filter concatenation")."""

    out_channels: int

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=1)


def same_size_max_pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(3, stride=1, padding=1)


class InceptionNaive(Branches):
    """Fig. 2(a): 1×1, 3×3 and 5×5 convolutions and a 3×3 max-pool side by side. The pool passes all
    input channels through, so the output is always wider than the input: #1×1 + #3×3 + #5×5 + C_in."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3: int, ch5x5: int, batch_norm: bool = False):
        super().__init__()
        self.branch1 = ConvReLU(in_channels, ch1x1, 1, batch_norm=batch_norm)
        self.branch2 = ConvReLU(in_channels, ch3x3, 3, padding=1, batch_norm=batch_norm)
        self.branch3 = ConvReLU(in_channels, ch5x5, 5, padding=2, batch_norm=batch_norm)
        self.branch4 = same_size_max_pool()
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + in_channels


class Inception(Branches):
    """Fig. 2(b): 1×1 reductions before the 3×3 and 5×5 convolutions and after the pool.

    `kernel_5x5=3` reproduces torchvision's GoogLeNet, whose "5×5" branch has a 3×3 kernel (a slip
    kept for compatibility with its pretrained weights).
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int, batch_norm: bool = False, kernel_5x5: int = 5):
        super().__init__()
        self.branch1 = ConvReLU(in_channels, ch1x1, 1, batch_norm=batch_norm)
        self.branch2 = nn.Sequential(
            ConvReLU(in_channels, ch3x3red, 1, batch_norm=batch_norm),
            ConvReLU(ch3x3red, ch3x3, 3, padding=1, batch_norm=batch_norm),
        )
        self.branch3 = nn.Sequential(
            ConvReLU(in_channels, ch5x5red, 1, batch_norm=batch_norm),
            ConvReLU(ch5x5red, ch5x5, kernel_5x5, padding=kernel_5x5 // 2, batch_norm=batch_norm),
        )
        self.branch4 = nn.Sequential(same_size_max_pool(), ConvReLU(in_channels, pool_proj, 1, batch_norm=batch_norm))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
