"""Dilated convolutions (Yu & Koltun 2016, "Multi-Scale Context Aggregation by Dilated Convolutions"):
the context module, Table 1 of the paper as data.

A 3×3 convolution with dilation d samples its input every d pixels: the same 9 weights cover a
(2d + 1)² window. Stacking dilations 1, 1, 2, 4, 8, 16 grows the receptive field exponentially
(3, 5, 9, 17, 33, 65) while every layer keeps the full resolution and the parameters grow only
linearly; a last 3×3 and a 1×1 give 67×67. The module reads the C class-score maps of a
segmentation front end and returns C refined maps of the same size: a building block for dense
prediction, not a classifier (its classes field is 0, and it is not trained by `cnnlab train`).

Each layer is padded by its dilation, so the maps keep their size (the authors pad the input
instead); every layer but the last is followed by a ReLU (Table 1's "truncation").
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.registry import Paper, register

YU_2016 = Paper("F. Yu, V. Koltun", 2016, "Multi-Scale Context Aggregation by Dilated Convolutions")

# Table 1: per layer (kernel, dilation, receptive field, output channels of the basic and the large
# module in units of C, truncation by ReLU)
TABLE_1 = (
    (3, 1, 3, 1, 2, True),
    (3, 1, 5, 1, 2, True),
    (3, 2, 9, 1, 4, True),
    (3, 4, 17, 1, 8, True),
    (3, 8, 33, 1, 16, True),
    (3, 16, 65, 1, 32, True),
    (3, 1, 67, 1, 32, True),
    (1, 1, 67, 1, 1, False),
)
VOC_CLASSES = 21  # Pascal VOC 2012: 20 classes and background, the paper's C
IDENTITY_NOISE = 1e-3  # σ of the large module's off-identity weights ("σ ≪ C/c_{i+1}", value not given)


class ContextModule(nn.Sequential):
    """conv1 … conv8 with the dilations of Table 1, `widths[i]` × C output maps each."""

    def __init__(self, channels: int, widths: tuple[int, ...]):
        layers = OrderedDict()
        previous = channels
        for index, ((kernel, dilation, _, _, _, truncate), width) in enumerate(zip(TABLE_1, widths), start=1):
            out = width * channels
            layers[f"conv{index}"] = nn.Conv2d(previous, out, kernel, padding=dilation * (kernel // 2), dilation=dilation)
            if truncate:
                layers[f"relu{index}"] = nn.ReLU(inplace=True)
            previous = out
        super().__init__(layers)
        identity_init(self, channels)


def identity_init(module: ContextModule, channels: int) -> None:
    """Section 3: "standard initialization procedures" failed; every layer starts by passing its input
    through. A weight is C/c_out at the kernel centre where ⌊a·C/c_in⌋ = ⌊b·C/c_out⌋ (input map a,
    output map b), else noise N(0, σ²); for the basic module (c_in = c_out = C) that is exactly the
    identity, k_b(t, a) = 1[t = 0]·1[a = b], without noise. Biases 0."""
    with torch.no_grad():
        for conv in (m for m in module.modules() if isinstance(m, nn.Conv2d)):
            c_out, c_in, kh, kw = conv.weight.shape
            group_in = torch.arange(c_in, device=conv.weight.device) * channels // c_in
            group_out = torch.arange(c_out, device=conv.weight.device) * channels // c_out
            centre = (group_out[:, None] == group_in[None, :]).to(conv.weight.dtype) * (channels / c_out)
            if c_in == c_out == channels:
                conv.weight.zero_()
            else:
                conv.weight.normal_(0.0, IDENTITY_NOISE)
            conv.weight[:, :, kh // 2, kw // 2] = torch.where(centre > 0, centre, conv.weight[:, :, kh // 2, kw // 2])
            conv.bias.zero_()


def _weights(widths) -> int:
    c = [1, *widths]
    return sum(c[i] * c[i + 1] * row[0] ** 2 for i, row in enumerate(TABLE_1))  # in units of C²


INIT = ("the paper's identity initialisation (Section 3): each layer starts as the identity, "
        "k_b(t, a) = 1[t=0]·1[a=b]; the large module spreads C/c_out over groups of maps, noise σ = 1e-3 elsewhere")
NOTES = ("Table 1 as data (cnnlab.models.dilated.TABLE_1): 3×3 convolutions with dilations 1, 1, 2, 4, 8, 16, 1, then "
         "a 1×1; receptive fields 3, 5, 9, 17, 33, 65, 67, 67. Input and output: C = {c} score maps (Pascal VOC); "
         "a building block for dense prediction, not a classifier. {extra}")


@register(
    "dilated_context", family="Dilated convolution (block)", paper=YU_2016, input_shape=(VOC_CLASSES, 64, 64),
    num_classes=0, params=_weights([row[3] for row in TABLE_1]) * VOC_CLASSES ** 2 + 8 * VOC_CLASSES, init=INIT,
    notes=NOTES.format(c=VOC_CLASSES, extra="Basic module: C maps in every layer, 64·C² weights (the paper's count) "
                       "plus 8·C biases"),
)
def dilated_context(in_channels: int = VOC_CLASSES) -> ContextModule:
    """in_channels: C, the number of score maps in (and out): the front end's classes."""
    return ContextModule(in_channels, tuple(row[3] for row in TABLE_1))


@register(
    "dilated_context_large", family="Dilated convolution (block)", paper=YU_2016, input_shape=(VOC_CLASSES, 64, 64),
    num_classes=0,
    params=_weights([row[4] for row in TABLE_1]) * VOC_CLASSES ** 2 + sum(row[4] for row in TABLE_1) * VOC_CLASSES,
    init=INIT, notes=NOTES.format(c=VOC_CLASSES, extra="Large module: 2C, 2C, 4C, 8C, 16C, 32C, 32C, C maps"),
)
def dilated_context_large(in_channels: int = VOC_CLASSES) -> ContextModule:
    """in_channels: C, the number of score maps in (and out): the front end's classes."""
    return ContextModule(in_channels, tuple(row[4] for row in TABLE_1))
