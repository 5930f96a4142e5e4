"""The window arithmetic against PyTorch itself, and the receptive-field recurrences by hand."""

import itertools
from fractions import Fraction

import torch
import torch.nn.functional as F

from cnnlab.analysis.geometry import Axis, Window, misfit, stack


def test_output_sizes_equal_pytorchs_for_floor_and_ceil_mode():
    x = torch.empty(1, 1, 40, 40, device="meta")
    for size, kernel, stride, padding, ceil in itertools.product((7, 8, 13, 27, 40), (1, 2, 3, 5), (1, 2, 3, 4),
                                                                (0, 1, 2), (False, True)):
        if 2 * padding > kernel:
            continue  # PyTorch refuses padding over half the window
        window = Window(kernel, stride, padding, ceil_mode=ceil)
        real = F.max_pool2d(x[..., :size, :size], kernel, stride, padding, ceil_mode=ceil).shape[-1]
        assert window.output(size) == real, (size, kernel, stride, padding, ceil)


def test_misfit_counts_what_the_floor_throws_away():
    assert misfit(Window(11, 4), 227) is None  # (227 − 11)/4 + 1 = 55
    alexnet = misfit(Window(11, 4), 224)
    assert (alexnet.exact, alexnet.output, alexnet.discarded, alexnet.discarded_pixels) == (Fraction(217, 4), 54, 1, 1)
    stem = misfit(Window(7, 2, 3), 224)  # ResNet: the skipped position is padding
    assert (stem.output, stem.discarded, stem.discarded_pixels) == (112, 1, 0)
    wide = misfit(Window(3, 4), 20)  # windows at 0, 4, …, 16 cover 0‥18: pixel 19 is lost
    assert (wide.output, wide.discarded_pixels) == (5, 1)


def test_receptive_field_recurrence():
    assert stack(3, 2).size == 5 and stack(3, 3).size == 7 and stack(3, 3).jump == 1
    axis = Axis().through(Window(7, 2, 3)).through(Window(3, 2, 1))  # ResNet stem
    assert (axis.size, axis.jump, axis.start) == (11, 4, 0)
    axis = Axis().through(Window(11, 4)).through(Window(3, 2))  # AlexNet conv1 + pool1
    assert (axis.size, axis.jump, axis.start) == (19, 8, 9)  # the first unit sees pixels 0‥18
    assert axis.collapsed(27).size == 19 + 26 * 8 and axis.collapsed(27).jump is None
