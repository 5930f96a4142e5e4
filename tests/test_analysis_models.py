"""Your own models: import paths, files and timm in summary, compare and viz architecture, checked
against torchvision's own numbers; and every way of naming one wrongly gives one line."""

import json
import sys
import textwrap

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.analysis.formatters import params_text
from cnnlab.cli import main
from cnnlab.models.external import build_model

# Five torchvision models outside the zoo, their weights' metadata and the input they were measured at
OUTSIDE = [
    ("mobilenet_v2", "MobileNet_V2_Weights", (3, 224, 224)),
    ("densenet121", "DenseNet121_Weights", (3, 224, 224)),
    ("inception_v3", "Inception_V3_Weights", (3, 299, 299)),
    ("squeezenet1_0", "SqueezeNet1_0_Weights", (3, 224, 224)),
    ("efficientnet_b0", "EfficientNet_B0_Weights", (3, 224, 224)),
]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name, weights, shape", OUTSIDE)
def test_torchvision_models_by_import_path(name, weights, shape):
    result = cnnlab.summary(f"torchvision.models:{name}", shape)
    real = getattr(torchvision.models, name)()  # a real CPU build, counted by torch itself
    assert result.totals.params == sum(p.numel() for p in real.parameters())
    meta = torchvision.models.get_weight(f"{weights}.IMAGENET1K_V1").meta
    assert result.totals.params == meta["num_params"]  # Inception-v3's include its auxiliary head
    assert result.totals.macs / 1e9 == pytest.approx(meta["_ops"], abs=5e-4)  # published to 3 decimals
    assert result.totals.params == sum(row.params for row in result.rows)
    assert not [row.name for row in result.rows if any(row.misalignment)]
    if name == "inception_v3":
        assert result.totals.params_training_only == sum(p.numel() for p in real.AuxLogits.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():  # the independent count, on meta
        build_model(f"torchvision.models:{name}").eval()(torch.empty(1, *shape, device="meta"))
    assert counter.get_total_flops() == 2 * result.totals.macs


def test_a_module_and_its_import_path_give_the_same_summary():
    by_path = cnnlab.summary("torchvision.models:squeezenet1_1", (3, 224, 224))
    by_module = cnnlab.summary(torchvision.models.squeezenet1_1(), (3, 224, 224))
    assert [(r.name, r.output_shape, r.params, r.macs) for r in by_path.rows] == \
           [(r.name, r.output_shape, r.params, r.macs) for r in by_module.rows]


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(textwrap.dedent('''
        import torch
        from torch import nn


        class Net(nn.Module):
            def __init__(self, width=8, classes=10):
                super().__init__()
                self.conv = nn.Conv2d(3, width, 3, padding=1)
                self.fc = nn.Linear(width, classes)

            def forward(self, x):
                return self.fc(self.conv(x).mean((2, 3)))


        class Tied(nn.Module):
            """Two layers, one weight: the second reuses the first's (weight tying)."""

            def __init__(self):
                super().__init__()
                self.encode = nn.Linear(12, 12, bias=False)
                self.decode = nn.Linear(12, 12, bias=False)
                self.decode.weight = self.encode.weight

            def forward(self, x):
                return self.decode(torch.relu(self.encode(x.flatten(1))))


        class Pair(nn.Module):
            def forward(self, image, mask):
                return image * mask
    '''))
    return path


def test_a_file_with_constructor_arguments(capsys, user_file):
    code, out, _ = run(capsys, "summary", f"{user_file}:Net", "--arg", "width=16", "--arg", "classes=5",
                       "--input", "3x32x32", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["totals"]["params"] == (3 * 9 * 16 + 16) + (16 * 5 + 5)
    assert data["totals"]["macs"] == 32 * 32 * 16 * 27 + 16 * 5
    assert data["model"] == f"{user_file}:Net"


def test_tied_parameters_are_counted_once_and_said_so(user_file):
    result = cnnlab.summary(f"{user_file}:Tied", (3, 2, 2))
    assert result.totals.params == 12 * 12  # one weight, two layers
    assert result.totals.macs == 2 * 12 * 12  # both layers do their arithmetic
    assert result.notes == ["shared parameters counted once: decode.weight = encode.weight"]


def test_compare_takes_outside_models(capsys):
    code, out, _ = run(capsys, "compare", "resnet18", "torchvision.models:resnet18", "--format", "csv",
                       "--input", "3x224x224")
    assert code == 0
    ours, theirs = [dict(zip(out.splitlines()[0].split(","), line.split(","))) for line in out.splitlines()[1:]]
    for key in ("params", "MACs", "depth", "RF"):  # our ResNet-18 is torchvision's, number for number
        assert ours[key] == theirs[key], key
    # torchvision adds the shortcut in place (out += identity): 8 fewer new tensors than our out + identity
    assert int(ours["activation memory"]) - int(theirs["activation memory"]) == 4 * sum(
        row.output_values for row in cnnlab.summary("resnet18").rows if row.type == "add")


def test_timm_models_when_timm_is_installed():
    timm = pytest.importorskip("timm")
    result = cnnlab.summary("timm:resnet50", (3, 224, 224))
    assert result.totals.params == sum(p.numel() for p in timm.create_model("resnet50").parameters())
    assert result.totals.macs == cnnlab.summary("resnet50").totals.macs  # the same v1.5 network as torchvision's


def test_timm_missing_is_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # as if not installed
    code, _, err = run(capsys, "summary", "timm:resnet50", "--input", "3x224x224")
    assert code == 2 and err.count("\n") == 1 and "pip install timm" in err


@pytest.mark.parametrize("argv, message", [
    (["no_such_module_for_cnnlab:Net"], "cannot import no_such_module_for_cnnlab: ModuleNotFoundError"),
    (["{file}:Missing"], "has no 'Missing': it defines Net, Pair, Tied"),
    (["{file}"], "name the model in the file, e.g."),
    (["{dir}/absent.py:Net"], "no file"),
    (["{file}:Net", "--arg", "depth=3"], "does not take depth; it takes: width, classes"),
    (["{file}:Net", "--arg", "width"], "is not key=value"),
    (["{file}:Pair"], "forward needs 2 inputs (image, mask)"),
    (["torchvision.models:mobilenet_v2", "--arg", "wings=2"], "unexpected keyword argument 'wings'"),
    (["torchvision.models:resnet"], "not a model class or a function"),
    (["torchvision.models:mobilenet_v2"], "give one, e.g. --input 3x224x224"),
])
def test_bad_models_are_one_line(capsys, user_file, argv, message):
    argv = [a.format(file=user_file, dir=user_file.parent) for a in argv]
    shape = [] if "mobilenet_v2" in argv[0] and len(argv) == 1 else ["--input", "3x32x32"]
    code, _, err = run(capsys, "summary", *argv, *shape)
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_parameters_are_counted_without_training_only_heads_everywhere(capsys, tmp_path, monkeypatch):
    googlenet = cnnlab.summary("googlenet").totals
    assert params_text(googlenet) == "6,998,552 (+ 6,379,728 in training-only heads, 13,378,280 in all)"
    code, out, _ = run(capsys, "compare", "googlenet", "--format", "json")
    row = json.loads(out)[0]
    assert (row["params"], row["training-only params"]) == (cnnlab.card("googlenet").params, 6_379_728)
    from cnnlab.viz.architecture import plot_architecture

    (svg,), _ = plot_architecture("googlenet", None, tmp_path / "a", formats=("svg",))
    assert "parameters 6,998,552 (+ 6,379,728 in training-only heads" in svg.read_text()


def test_viz_architecture_draws_an_outside_model(capsys, tmp_path):
    code, out, err = run(capsys, "viz", "architecture", "torchvision.models:squeezenet1_0", "--input-shape",
                         "3x224x224", "--out", str(tmp_path), "--arg", "num_classes=10")
    assert code == 0, err
    assert out.split() == [str(tmp_path / "architecture.png"), str(tmp_path / "architecture.svg")]
    assert (tmp_path / "architecture.png").stat().st_size > 10_000
