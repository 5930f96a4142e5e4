"""Building blocks shared by several model families."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import DeformConv2d


def paper_lrn(size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> nn.LocalResponseNorm:
    """Local response normalisation with the constants as Krizhevsky et al. (2012) write them.

    The paper divides by (k + alpha * sum of squares over n neighbours) ** beta; torch's
    LocalResponseNorm divides alpha by n first, (k + alpha/n * sum) ** beta, as Caffe does. So the
    paper's alpha = 1e-4 with n = 5 is torch's alpha = 5e-4. (Caffe's reference AlexNet passes 1e-4
    to the /n form, i.e. five times weaker normalisation than the paper's formula.)
    """
    return nn.LocalResponseNorm(size, alpha=alpha * size, beta=beta, k=k)


class DeformableConv2d(DeformConv2d):
    """A deformable convolution (Dai et al. 2017) that learns its own offsets.

    torchvision's `DeformConv2d` samples its input at the kernel grid moved by offsets it is given.
    Here the offsets come, as in the paper, from an ordinary convolution over the same input with the
    same kernel size, stride, padding and dilation, producing 2·k_h·k_w channels (a (Δy, Δx) pair per
    kernel tap and output position). That convolution starts at zero, so a fresh layer samples the
    regular grid: it is exactly the ordinary convolution with the same weights until training moves
    the offsets. The offset weights are plain parameters of this module (`offset_weight`,
    `offset_bias`) rather than a child `nn.Conv2d`, so the layer is one leaf: the analyzer gives it one
    row whose MACs include the offset branch.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        taps = self.kernel_size[0] * self.kernel_size[1]
        self.offset_weight = nn.Parameter(torch.zeros(2 * taps, in_channels, *self.kernel_size))
        self.offset_bias = nn.Parameter(torch.zeros(2 * taps))

    @classmethod
    def like(cls, conv: nn.Conv2d) -> "DeformableConv2d":
        """The deformable twin of `conv`: same geometry, a copy of its weights, zero offsets, so it
        computes what `conv` computes until its offsets are trained."""
        twin = cls(conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride, conv.padding,
                   conv.dilation, conv.groups, bias=conv.bias is not None).to(conv.weight.device)
        with torch.no_grad():
            twin.weight.copy_(conv.weight)
            if conv.bias is not None:
                twin.bias.copy_(conv.bias)
        return twin

    def forward(self, x: Tensor) -> Tensor:
        offset = F.conv2d(x, self.offset_weight, self.offset_bias, self.stride, self.padding, self.dilation)
        return super().forward(x, offset)
