"""Receptive fields complete: size, jump and effective padding per layer, the input box of any
unit, and the alignment of branches where they merge."""

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.cli import main


def rows_by_name(result):
    return {row.name: row for row in result.rows}


def araujo(windows):
    """Size, jump and effective padding after a chain of windows (kernel, stride, padding, dilation),
    by the recurrences of Araujo et al. (Distill 2019): r += (k_eff − 1)·j, P += p·j, j *= s."""
    r, j, p = 1, 1, 0
    for kernel, stride, padding, dilation in windows:
        r += (dilation * (kernel - 1)) * j
        p += padding * j
        j *= stride
    return r, j, p


def chain(model: nn.Module):
    """(name, window) of every convolution and pooling of a single-path network, in order."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            pair = lambda v: v if isinstance(v, int) else v[0]  # noqa: E731
            yield name, (pair(module.kernel_size), pair(module.stride), pair(module.padding),
                         pair(getattr(module, "dilation", 1)))


@pytest.mark.parametrize("name, layer, published", [
    ("vgg_d", "features.30", (212, 32, 90)),  # VGG-16 pool5, as google-research/receptive_field lists it
    ("alexnet", "features.pool5", (195, 32, 64)),  # the paper AlexNet at 227×227
])
def test_published_fields_of_the_last_pool(name, layer, published):
    axis = rows_by_name(cnnlab.summary(name))[layer].receptive_field
    assert [(a.size, a.jump, a.padding) for a in axis] == [published, published]


@pytest.mark.parametrize("name", ["vgg_d", "alexnet", "alexnet_torchvision", "nin_cifar", "lenet5", "vgg_e_bn"])
def test_every_layer_of_a_chain_matches_the_recurrences(name):
    rows = rows_by_name(cnnlab.summary(name))
    windows = []
    for module_name, window in chain(cnnlab.create(name, guard=False)):
        windows.append(window)
        axis = rows[module_name].receptive_field[0]
        assert (axis.size, axis.jump, axis.padding) == araujo(windows), module_name


class Branches(nn.Module):
    """Two branches of equal output size: aligned when both pad symmetrically, shifted when one
    branch pads only on its bottom/right (its fields then sit `shift` pixels lower and further right)."""

    def __init__(self, shift: int):
        super().__init__()
        self.shift = shift
        self.left = nn.Conv2d(1, 1, 3, padding=1)
        self.right = nn.Conv2d(1, 1, 3, padding=1 - shift)

    def forward(self, x):
        return self.left(x) + self.right(nn.functional.pad(x, (0, 2 * self.shift, 0, 2 * self.shift)))


def test_misaligned_merges_are_flagged_with_the_offset():
    aligned = rows_by_name(cnnlab.summary(Branches(0), (1, 16, 16)))["add"]
    assert not any(aligned.misalignment) and not aligned.flags
    shifted = rows_by_name(cnnlab.summary(Branches(1), (1, 16, 16)))["add"]
    assert shifted.misalignment == (1, 1)
    assert "not centred alike" in shifted.flags[0] and "H 1 px, W 1 px" in shifted.flags[0]
    # the merged field covers both branches: 3 pixels centred at 0 and 3 centred at 1
    assert [(a.size, a.padding) for a in shifted.receptive_field] == [(4, 1), (4, 1)]


@pytest.mark.parametrize("name", cnnlab.list_models())
def test_zoo_merges_are_aligned(name):
    # every residual addition and Inception concatenation of the zoo joins fields with one centre
    assert not [row.name for row in cnnlab.summary(name).rows if any(row.misalignment)]


class Probe(nn.Module):
    """Conv/average-pool stack with stride, dilation and a residual branch: every input pixel of a
    unit's field has a non-zero gradient almost surely (no max-pool, no ReLU gating)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 5, stride=2, padding=2)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=2, dilation=2)
        self.shortcut = nn.Conv2d(4, 4, 1)
        self.conv3 = nn.Conv2d(4, 2, 3, stride=2)

    def forward(self, x):
        x = self.pool(self.conv1(x))
        return self.conv3(self.conv2(x) + self.shortcut(x))


@pytest.mark.parametrize("unit", [(0, 0), (2, 3), (6, 6)])
def test_the_unit_box_is_where_the_gradient_is(unit):
    torch.manual_seed(0)
    model = Probe()
    x = torch.randn(1, 1, 61, 61, requires_grad=True)
    out = model(x)
    out[0, 0, unit[0], unit[1]].backward()
    rows_, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    seen = [(int(rows_.min()), int(rows_.max())), (int(cols.min()), int(cols.max()))]
    from cnnlab.analysis.units import unit_box

    _, _, box = unit_box(cnnlab.summary(model, (1, 61, 61)), f"conv3:{unit[0]},{unit[1]}")
    assert seen == [(max(first, 0), min(last, 60)) for first, last in box]


def test_unit_command_prints_the_box_and_the_part_in_the_padding(capsys):
    assert main(["summary", "vgg_d", "--unit", "features.30:0,0"]) == 0
    out = capsys.readouterr().out
    assert "rows -90…121, columns -90…121" in out  # 212 pixels from −90, the effective padding
    assert "inside the image: rows 0…121, columns 0…121" in out
    assert f"{212 * 212 - 122 * 122} of its {212 * 212} pixels lie in the padding" in out
    assert main(["summary", "vgg_d", "--unit", "features.30:6,6"]) == 0
    assert "rows 102…313" in capsys.readouterr().out  # 6·32 − 90
    assert main(["summary", "alexnet", "--unit", "features.pool5:5,0", "--lang", "zh"]) == 0
    assert "行 96…290, 列 -64…130" in capsys.readouterr().out  # 5·32 − 64


@pytest.mark.parametrize("spec, message", [
    ("features.31:0,0", "no layer 'features.31'"),
    ("features.30:7,0", "coordinates in 0…6,0…6"),
    ("features.30:1", "coordinates in 0…6,0…6"),
    ("features.30:a,b", "whole numbers"),
    ("classifier.6:1000", "0 <= K < 1000"),
])
def test_bad_units_are_one_line(capsys, spec, message):
    assert main(["summary", "vgg_d", "--unit", spec]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
