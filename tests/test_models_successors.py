"""What grew from the classic networks: DenseNet, ZFNet, pre-activation and wide ResNets, ResNeXt,
dilated and deformable convolutions, against their papers' numbers, torchvision, arithmetic and the
analyzer; and short CPU trainings on real CIFAR-10 images."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from test_models_modern import assert_round_trip, hooked_macs, n_params, on_meta, randomize_batchnorm
from torch import nn

from cnnlab import run as rundir
from cnnlab.analysis import render, summary
from cnnlab.analysis.compare import compare
from cnnlab.analysis.ops import NOMINAL_FIELD
from cnnlab.cli import main
from cnnlab.data import load_arrays
from cnnlab.models import card, create
from cnnlab.models.densenet import DenseBlock
from cnnlab.models.dilated import TABLE_1
from cnnlab.models.layers import DeformableConv2d
from cnnlab.models.preact import PreActUnit

# the papers' parameter columns, in millions: DenseNet Table 2, Identity Mappings Tables 2-3, WRN
# Table 5, ResNeXt Table 1
PAPER_MILLIONS = {
    "densenet40_k12": 1.0, "densenet100_k12": 7.0, "densenet100_k24": 27.2, "densenet_bc100_k12": 0.8,
    "densenet_bc250_k24": 15.3, "densenet_bc190_k40": 25.6, "preact_resnet110": 1.7, "preact_resnet164": 1.7,
    "wrn28_10": 36.5, "wrn16_8": 11.0, "resnext50_32x4d": 25.0,
}
TORCHVISION = ("densenet121", "densenet161", "densenet169", "densenet201", "resnext50_32x4d")


@pytest.mark.parametrize("name, millions", PAPER_MILLIONS.items())
def test_parameter_counts_round_to_the_papers(name, millions):
    counted = n_params(on_meta(name))
    assert round(counted / 1e6, 1) == millions and card(name).params == counted


def test_resnet1001s_10_2_million_leave_out_batch_norm():
    model = on_meta("preact_resnet1001")
    norms = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    # three BNs a unit (its input, planes, planes), 111 units a stage, and the last one: 2 parameters a channel
    per_stage = [inputs + 2 * planes + 110 * (4 * planes + 2 * planes) for planes, inputs in ((16, 16), (32, 64), (64, 128))]
    assert norms == 2 * sum(per_stage) + 2 * 256 == 149_216
    assert round((n_params(model) - norms) / 1e6, 1) == 10.2 and round(n_params(model) / 1e6, 1) == 10.3


@pytest.mark.parametrize("name", TORCHVISION)
def test_parameter_counts_equal_torchvisions(name):
    with torch.device("meta"):
        theirs = getattr(torchvision.models, name)()
    assert n_params(on_meta(name)) == n_params(theirs) == card(name).params


def wrn_arithmetic(depth: int, k: int, classes: int = 10) -> int:
    """WRN-depth-k by hand: stem, 3 stages of n units (BN, 3×3, BN, 3×3, a 1×1 projection in the
    first), final BN, classifier; no convolution has a bias."""
    n, total, channels = (depth - 4) // 6, 3 * 16 * 9, 16
    for width in (16 * k, 32 * k, 64 * k):
        for unit in range(n):
            total += 2 * channels + 9 * channels * width + 2 * width + 9 * width * width
            total += channels * width if unit == 0 else 0
            channels = width
    return total + 2 * channels + channels * classes + classes


def densenet_bc_arithmetic(depth: int, k: int, classes: int = 10) -> int:
    """DenseNet-BC by hand: a layer reading c maps has BN(c), 1×1 c→4k, BN(4k), 3×3 4k→k; a
    transition BN(c) and 1×1 c→c/2."""
    n, channels, total = (depth - 4) // 6, 2 * k, 3 * 2 * k * 9
    for block in range(3):
        for _ in range(n):
            total += 2 * channels + channels * 4 * k + 2 * 4 * k + 4 * k * 9 * k
            channels += k
        if block < 2:
            total += 2 * channels + channels * (channels // 2)
            channels //= 2
    return total + 2 * channels + channels * classes + classes


def test_wide_resnet_and_densenet_bc_counts_by_arithmetic():
    assert n_params(create("wrn28_10")) == wrn_arithmetic(28, 10) == 36_479_194
    assert n_params(create("wrn16_8")) == wrn_arithmetic(16, 8)
    assert n_params(create("densenet_bc100_k12")) == densenet_bc_arithmetic(100, 12) == 769_162
    assert n_params(create("densenet_bc250_k24")) == densenet_bc_arithmetic(250, 24)


@pytest.mark.parametrize("name", TORCHVISION)
def test_round_trips_with_torchvision(name):
    assert_round_trip(name, getattr(torchvision.models, name), torch.randn(1, 3, 32, 32), num_classes=10)


# -- DenseNet ------------------------------------------------------------------------------------------

def test_every_dense_layer_reads_all_the_maps_before_it():
    model = create("densenet121", num_classes=10, guard=False).eval()
    block = model.features.denseblock2  # 128 maps in, 12 layers of k = 32
    assert [layer.conv1.in_channels for layer in block.values()] == [128 + 32 * i for i in range(12)]
    x = torch.randn(1, 128, 8, 8)
    with torch.no_grad():
        out = block(x)
    assert out.shape == (1, 128 + 12 * 32, 8, 8) and torch.equal(out[:, :128], x)  # the input passes through
    sizes = {}
    for name in ("denseblock1", "transition1", "denseblock2", "transition2", "denseblock3", "transition3",
                 "denseblock4"):
        getattr(model.features, name).register_forward_hook(lambda m, i, o, n=name: sizes.__setitem__(n, o.shape[1:]))
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    assert {n: tuple(s) for n, s in sizes.items()} == {  # Table 1: 56, 28, 14, 7; channels by k = 32, θ = 0.5
        "denseblock1": (256, 56, 56), "transition1": (128, 28, 28), "denseblock2": (512, 28, 28),
        "transition2": (256, 14, 14), "denseblock3": (1024, 14, 14), "transition3": (512, 7, 7),
        "denseblock4": (1024, 7, 7)}


def test_cifar_densenets_follow_table_2():
    bc = create("densenet_bc100_k12")
    assert [len(b) for b in bc.features.children() if isinstance(b, DenseBlock)] == [16, 16, 16]
    assert bc.features.conv0.out_channels == 24 and bc.features.transition1.conv.out_channels == (24 + 16 * 12) // 2
    plain = create("densenet40_k12")
    assert [len(b) for b in plain.features.children() if isinstance(b, DenseBlock)] == [12, 12, 12]
    assert plain.features.conv0.out_channels == 16 and not hasattr(plain.features.denseblock1.denselayer1, "conv2")
    dropped = create("densenet40_k12", drop_rate=0.2)
    assert sum(isinstance(m, nn.Dropout) for m in dropped.modules()) == 36 + 2  # after every conv but the stem
    assert card("densenet_bc100_k12").published_error.startswith("4.51% (C10+)")


# -- ZFNet, ResNeXt, pre-activation and wide ResNets ---------------------------------------------------

def test_zfnet_follows_the_papers_figure():
    model = create("zfnet", num_classes=10, guard=False).eval()
    sizes = {}
    for name, layer in model.features.named_children():
        layer.register_forward_hook(lambda m, i, o, n=name: sizes.__setitem__(n, tuple(o.shape[1:])))
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    assert [sizes[n] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")] == [
        (96, 110, 110), (96, 55, 55), (256, 26, 26), (256, 13, 13), (384, 13, 13), (384, 13, 13), (256, 13, 13),
        (256, 6, 6)]
    conv1 = model.features.conv1
    assert (conv1.kernel_size, conv1.stride) == ((7, 7), (2, 2))  # AlexNet: 11×11 at stride 4
    assert all(m.groups == 1 for m in model.modules() if isinstance(m, nn.Conv2d))  # no GPU towers


def test_resnext_splits_every_3x3_into_32_paths_and_costs_the_papers_flops():
    model = on_meta("resnext50_32x4d")
    assert [model.get_submodule(f"layer{i}.0.conv2").groups for i in range(1, 5)] == [32] * 4
    assert [model.get_submodule(f"layer{i}.0.conv2").in_channels for i in range(1, 5)] == [128, 256, 512, 1024]
    assert hooked_macs(model, (3, 224, 224)) == pytest.approx(card("resnext50_32x4d").macs, rel=0.01)  # 4.2 G


@pytest.mark.parametrize("name", ["preact_resnet110", "preact_resnet164", "wrn16_8"])
def test_pre_activation_units_add_nothing_after_the_sum(name):
    model = create(name, guard=False).eval()
    randomize_batchnorm(model)
    unit = model.layer2[1]  # an identity unit
    last = unit.conv3 if hasattr(unit, "conv3") else unit.conv2
    x = torch.randn(2, unit.bn1.num_features, 8, 8)  # negative values too: no ReLU may follow the addition
    with torch.no_grad():
        assert not torch.equal(unit(x), x)
        last.weight.zero_()
        assert torch.equal(unit(x), x)  # the residual branch silenced, the unit is exactly the identity
    first = model.layer2[0]
    assert isinstance(first, PreActUnit) and isinstance(first.downsample, nn.Conv2d)  # projection, no BN
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))


def test_wide_resnet_dropout_sits_between_the_two_convolutions():
    unit = create("wrn28_10", dropout=0.3).layer1[1]
    assert [name for name, _ in unit.named_children()] == ["bn1", "relu", "conv1", "bn2", "dropout", "conv2"]
    assert unit.dropout.p == 0.3 and create("wrn28_10").layer1[1].dropout is None


# -- deformable convolution ------------------------------------------------------------------------------

def test_a_fresh_deformable_convolution_is_its_plain_twin():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=True)
    deform = DeformableConv2d.like(conv)
    x = torch.randn(2, 8, 11, 11)
    torch.testing.assert_close(deform(x), conv(x), rtol=1e-5, atol=1e-5)
    assert not deform.offset_weight.any() and deform.offset_weight.shape == (18, 8, 3, 3)


def test_offsets_move_the_samples_as_the_paper_defines_them():
    """Δx = +1 for every tap samples one pixel to the right: out(p) = Σ_k w(k)·x(p + k + 1), x zero
    outside, i.e. the unpadded convolution of x padded by 0 on the left and 2 on the right (by hand)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False)
    deform = DeformableConv2d.like(conv)
    with torch.no_grad():
        deform.offset_bias[1::2] = 1.0  # torchvision's layout: (Δy, Δx) per tap
    x = torch.randn(1, 4, 7, 9)
    expected = F.conv2d(F.pad(x, (0, 2, 1, 1)), conv.weight)
    torch.testing.assert_close(deform(x), expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(deform(x), conv(x), atol=1e-2)


def test_resnet50_deform_loads_torchvision_weights_and_computes_resnet50():
    torch.manual_seed(0)
    theirs = randomize_batchnorm(torchvision.models.resnet50(num_classes=10)).eval()
    ours = create("resnet50_deform", num_classes=10, guard=False).eval()
    missing, unexpected = ours.load_state_dict(theirs.state_dict(), strict=False)
    assert unexpected == [] and sorted(missing) == sorted(
        f"layer4.{i}.conv2.offset_{kind}" for i in range(3) for kind in ("weight", "bias"))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)  # zero offsets: the regular grid
    assert [type(ours.layer4[i].conv2).__name__ for i in range(3)] == ["DeformableConv2d"] * 3
    assert all(type(m) is nn.Conv2d for m in ours.layer3.modules() if isinstance(m, nn.Conv2d))


def test_the_analyzer_counts_the_offset_branch_and_marks_the_field_nominal():
    deform, plain = summary("resnet50_deform"), summary("resnet50")
    rows = {r.name: r for r in deform.rows}
    conv, offset = 7 * 7 * 512 * 512 * 9, 7 * 7 * 18 * 512 * 9  # the 3×3 at 7×7, and its offset branch
    assert rows["layer4.1.conv2"].macs == conv + offset and rows["layer4.1.conv2"].type == "DeformableConv2d"
    assert rows["layer4.1.conv2"].other_ops == 4 * 7 * 7 * 512 * 9  # bilinear sampling: 4 per sample
    assert deform.totals.macs == plain.totals.macs + 7 * 7 * 18 * 9 * (512 + 512 + 512)
    assert NOMINAL_FIELD in rows["layer4.1.conv2"].flags and NOMINAL_FIELD not in rows["layer3.1.conv2"].flags
    plain_rows = {r.name: r for r in plain.rows}
    for name, row in rows.items():  # the nominal field is the plain network's, layer for layer
        assert row.receptive_field == plain_rows[name].receptive_field, name
    assert deform.totals.depth == plain.totals.depth == 50  # the offset branch is not a layer on the path
    # the totals say so too: the last map's field is the regular grid's, not a bound
    assert deform.totals.receptive_field_nominal and not plain.totals.receptive_field_nominal
    assert "427, 32, 213 (nominal: deformable layers move their samples" in " ".join(str(deform).split())
    assert "nominal" not in str(plain).split("receptive field of the last feature map")[1].splitlines()[0]
    assert json.loads(render(deform, "json"))["totals"]["receptive_field_nominal"] is True
    table = compare(["resnet50", "resnet50_deform"])
    assert table.splitlines()[-1].endswith("427 (nominal)") and table.splitlines()[-2].endswith(" 427")


# -- dilated convolution ---------------------------------------------------------------------------------

def test_dilated_receptive_fields_are_table_1s():
    rows = [r for r in summary("dilated_context").rows if r.type == "Conv2d"]
    assert [r.receptive_field[0].size for r in rows] == [row[2] for row in TABLE_1] == [3, 5, 9, 17, 33, 65, 67, 67]
    assert [r.windows[0].dilation for r in rows] == [1, 1, 2, 4, 8, 16, 1, 1]
    assert all(r.receptive_field[0].jump == 1 and r.output_shape == (21, 64, 64) for r in rows)  # full resolution
    assert all(r.macs == 64 * 64 * 21 * 21 * 9 for r in rows[:7])  # a dilated 3×3 costs a 3×3


def test_dilated_receptive_field_after_a_stride_by_hand():
    """3×3/2 → 3×3 dilation 2 → 3×3 dilation 4 ('same' padding): the field grows by d·(k − 1)·jump:
    3, then 3 + 4·2 = 11, then 11 + 8·2 = 27; the jump stays 2 and the first centre at pixel 0."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding="same", dilation=2),
                          nn.Conv2d(4, 4, 3, padding=4, dilation=4))
    rows = summary(model, (1, 32, 32)).rows
    assert [(r.receptive_field[0].size, r.receptive_field[0].jump, r.receptive_field[0].start) for r in rows] == [
        (3, 2, 0), (11, 2, 0), (27, 2, 0)]
    assert [r.output_shape[1:] for r in rows] == [(16, 16)] * 3


def test_the_context_modules_start_as_the_identity_with_64_c_squared_weights():
    x = torch.randn(1, 21, 32, 32)
    basic = create("dilated_context", guard=False)
    with torch.no_grad():
        torch.testing.assert_close(basic(x), torch.relu(x), rtol=0, atol=1e-6)  # k(t, a) = 1[t = 0]·1[a = b]
        large = create("dilated_context_large", guard=False)
        torch.testing.assert_close(large(x.abs()), x.abs(), rtol=0, atol=0.5)  # C/c_out spread + small noise
    weights = sum(m.weight.numel() for m in basic.modules() if isinstance(m, nn.Conv2d))
    assert weights == 64 * 21 ** 2  # the paper: "64C² parameters"


# -- trained on a CPU ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cifar_batch(shared_data):
    images, labels, _ = load_arrays("cifar10", "train", shared_data)
    mean, std = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.2470, 0.2435, 0.2616])
    x = (torch.from_numpy(images[:16]).float() / 255 - mean[:, None, None]) / std[:, None, None]
    return x, torch.from_numpy(labels[:16])


@pytest.fixture
def one_thread():
    """One PyTorch thread: on the shared 2-core machine, 2 threads run these small batches 3× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["densenet_bc100_k12", "resnet20_deform"])
def test_a_short_cpu_training_on_cifar10_lowers_the_loss(name, cifar_batch, one_thread):
    x, y = cifar_batch
    torch.manual_seed(0)
    model = create(name).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0], losses
    offsets = [p for n, p in model.named_parameters() if n.endswith("offset_weight")]
    assert len(offsets) == (6 if name == "resnet20_deform" else 0)
    assert all(p.abs().max() > 0 for p in offsets)  # the offsets learned to move from the regular grid


@pytest.mark.parametrize("name", ["densenet_bc100_k12", "resnet20_deform", "preact_resnet164"])
def test_cnnlab_train_trains_them(name, tmp_path, shared_data):
    images, labels, classes = load_arrays("cifar10", "test", shared_data)
    for k in range(2):  # a folder of 32×32 CIFAR-10 test images: 6 to train on and 2 to test per class
        for position, i in enumerate(np.flatnonzero(labels == k)[:8]):
            folder = tmp_path / "data" / ("train" if position < 6 else "val") / classes[k]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i].transpose(1, 2, 0)).save(folder / f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", name, "--dataset", "imagefolder", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
                 "--batch-size", "6", "--workers", "0", "--augment", "crop:4", "flip", "--threads", "1", "--quiet",
                 "--device", "cpu", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == name and config["model_kwargs"]["num_classes"] == 2
    assert (run / "checkpoints" / "last" / "model.safetensors").is_file()
    records = {r["split"]: r for r in rundir.read_metrics(run)}
    assert np.isfinite(records["train"]["loss"]) and np.isfinite(records["test"]["loss"])


# -- the command line ------------------------------------------------------------------------------------

ONE_PER_FAMILY = ["zfnet", "densenet121", "densenet_bc100_k12", "preact_resnet164", "wrn28_10", "resnext50_32x4d",
                  "resnet50_deform", "resnet20_deform", "dilated_context"]


def test_list_show_compare_and_viz_architecture(tmp_path, capsys):
    """(`cnnlab summary` of every zoo model: tests/test_analysis_cli.py.)"""
    assert main(["list", "--format", "json"]) == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["densenet_bc100_k12"]["params"] == 769_162 and listed["wrn28_10"]["aliases"] == "wrn-28-10"
    for name in ONE_PER_FAMILY:
        assert main(["show", name]) == 0
        out = capsys.readouterr().out
        assert f"{card(name).params:,} trainable (counted); card {card(name).params:,}" in out and str(card(name).paper) in out
        assert main(["viz", "architecture", name, "--out", str(tmp_path / name)]) == 0
        png, svg = map(Path, capsys.readouterr().out.split()[-2:])
        assert (png.name, svg.name) == ("architecture.png", "architecture.svg")
        assert png.stat().st_size > 10_000 and svg.read_text().count("<text") > 10
    assert main(["compare", *ONE_PER_FAMILY, "--format", "csv"]) == 0
    compared = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in compared[1:]] == ONE_PER_FAMILY
