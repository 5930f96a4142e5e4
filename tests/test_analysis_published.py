"""The analyzer against published numbers: papers, torchvision's metadata, the lecture tables."""

from fractions import Fraction

import pytest
import torch
import torchvision

import cnnlab
from cnnlab.errors import CnnlabError


def rows_by_name(result):
    return {row.name: row for row in result.rows}


def test_paper_alexnet_shapes_at_227():
    result = cnnlab.summary("alexnet", (3, 227, 227))
    rows = rows_by_name(result)
    expected = {
        "features.conv1": (96, 55, 55),
        "features.pool1": (96, 27, 27),
        "features.conv2": (256, 27, 27),
        "features.pool2": (256, 13, 13),
        "features.conv5": (256, 13, 13),
        "features.pool5": (256, 6, 6),
        "flatten": (9216,),
    }
    assert {name: rows[name].output_shape for name in expected} == expected
    assert result.totals.params == 60_965_224
    assert sum(row.params for row in result.rows) == 60_965_224  # every parameter sits on a row
    assert rows["features.conv2"].groups == 2  # the two-GPU split


def test_alexnet_torchvision_reproduces_the_lecture_table_at_227():
    # 层次 / 输出维度 / 内存 (KB, per image, fp32) / 参数 of the PyTorch table in the course notes
    lecture = [
        ("features.0", (64, 56, 56), 784, 23_296),
        ("features.2", (64, 27, 27), 182, 0),
        ("features.3", (192, 27, 27), 547, 307_392),
        ("features.5", (192, 13, 13), 127, 0),
        ("features.6", (384, 13, 13), 254, 663_936),
        ("features.8", (256, 13, 13), 169, 884_992),
        ("features.10", (256, 13, 13), 169, 590_080),
        ("features.12", (256, 6, 6), 36, 0),
    ]
    rows = rows_by_name(cnnlab.summary("alexnet_torchvision", (3, 227, 227)))
    for name, shape, kb, params in lecture:
        row = rows[name]
        assert (row.output_shape, round(row.output_bytes / 1024), row.params) == (shape, kb, params), name
    assert [rows[f"classifier.{i}"].params for i in (1, 4, 6)] == [37_752_832, 16_781_312, 4_097_000]
    assert rows["flatten"].output_shape == (9216,)


# Multiply-accumulates at 224×224 as torchvision's weights metadata publishes them ("GFLOPS").
TORCHVISION_MACS = [
    ("alexnet_torchvision", "AlexNet_Weights", 0.714),
    ("vgg_a", "VGG11_Weights", 7.609),
    ("vgg_b", "VGG13_Weights", 11.308),
    ("vgg_d", "VGG16_Weights", 15.47),
    ("vgg_e", "VGG19_Weights", 19.632),
    ("googlenet_torchvision", "GoogLeNet_Weights", 1.498),
    ("resnet18", "ResNet18_Weights", 1.814),
    ("resnet34", "ResNet34_Weights", 3.664),
    ("resnet50", "ResNet50_Weights", 4.089),
    ("resnet101", "ResNet101_Weights", 7.801),
    ("resnet152", "ResNet152_Weights", 11.514),
]


@pytest.mark.parametrize("name, weights, giga", TORCHVISION_MACS)
def test_macs_agree_with_torchvision_metadata(name, weights, giga):
    published = torchvision.models.get_weight(f"{weights}.IMAGENET1K_V1").meta["_ops"]
    assert published == pytest.approx(giga, abs=1e-3)  # the table is torchvision's
    result = cnnlab.summary(name, (3, 224, 224))
    assert result.totals.macs / 1e9 == pytest.approx(published, rel=0.01)
    assert result.totals.flops == 2 * result.totals.macs


def test_receptive_fields_of_stacked_3x3_convolutions():
    from torch import nn

    for layers, field in [(2, 5), (3, 7)]:
        stack = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(layers)])
        last = cnnlab.summary(stack, (4, 32, 32)).rows[-1]
        assert [axis.size for axis in last.receptive_field] == [field, field]
        assert last.receptive_field[0].jump == 1


def test_vgg16_last_pool_sees_212_pixels():
    rows = rows_by_name(cnnlab.summary("vgg_d"))
    assert rows["features.30"].type == "MaxPool2d"
    assert [axis.size for axis in rows["features.30"].receptive_field] == [212, 212]
    assert rows["features.30"].receptive_field[0].jump == 32


def test_receptive_field_over_resnet_graph_takes_the_widest_branch():
    # By hand along the main path: 7×7/2 → 7, max-pool 3/2 → 11 (jump 4), layer1: 4 convs → 43,
    # layer2: 51 (jump 8) + 3 convs → 99, layer3: 115 (jump 16) + 96 → 211, layer4: 243 (jump 32)
    # + 3·64 → 435. The 1×1 projection shortcuts see less; the sum must keep the larger field.
    result = cnnlab.summary("resnet18")
    rows = rows_by_name(result)
    assert rows["layer4.1.add"].receptive_field[0].size == 435
    assert rows["layer4.0.downsample.0"].receptive_field[0].size < rows["layer4.0.add"].receptive_field[0].size
    assert result.totals.receptive_field[0].size == 435
    assert result.totals.depth == 18


def test_inception_example_of_the_lecture_notes():
    c, hw = 256, 28 * 28
    naive = cnnlab.summary("inception_naive", (c, 28, 28))
    assert naive.rows[-1].output_shape == (672, 28, 28)  # 128 + 192 + 96 + 256
    assert naive.totals.macs == hw * c * (128 * 1 + 192 * 9 + 96 * 25) == 854_196_224
    reduced = cnnlab.summary("inception", (c, 28, 28))
    assert reduced.rows[-1].output_shape == (480, 28, 28)  # 128 + 192 + 96 + 64
    expected = hw * (c * 128 + c * 64 + 64 * 192 * 9 + c * 64 + 64 * 96 * 25 + c * 64)
    assert reduced.totals.macs == expected == 271_351_808
    # parallel branches: the 5×5 branch sets the module's receptive field
    assert naive.totals.receptive_field[0].size == 5


def test_vgg16_forward_activation_memory_per_image():
    # The cs231n table: one tensor per CONV / POOL / FC layer (ReLU works in place).
    table = (
        2 * 224 * 224 * 64 + 112 * 112 * 64
        + 2 * 112 * 112 * 128 + 56 * 56 * 128
        + 3 * 56 * 56 * 256 + 28 * 28 * 256
        + 3 * 28 * 28 * 512 + 14 * 14 * 512
        + 3 * 14 * 14 * 512 + 7 * 7 * 512
        + 4096 + 4096 + 1000
    )
    assert table == 15_087_080  # + the 150,528 input values = 15.2 M, not the notes' "24 M"
    result = cnnlab.summary("vgg_d")
    avgpool = 7 * 7 * 512  # torchvision-style adaptive pool: a new (identical) 7×7 tensor
    assert result.totals.activation_bytes == 4 * (table + avgpool)
    assert result.totals.input_bytes == 4 * 3 * 224 * 224
    relu = rows_by_name(result)["features.1"]
    assert relu.output_bytes == 4 * 224 * 224 * 64 and not relu.allocates  # listed, not double counted


def test_paper_alexnet_at_224_is_flagged_with_the_exact_fraction():
    # The whole network cannot take 224 (fc6 expects 6·6·256); its convolutional part can.
    with pytest.raises(CnnlabError, match=r"classifier\.fc6 .*9216 .*6400.*3×227×227.*features\.conv1.*54\.25"):
        cnnlab.summary("alexnet", (3, 224, 224))
    rows = rows_by_name(cnnlab.summary(cnnlab.create("alexnet").features, (3, 224, 224)))
    conv1 = rows["conv1"]
    assert conv1.output_shape == (96, 54, 54)
    assert conv1.misfits[0].exact == Fraction(217, 4)  # (224 − 11)/4 + 1 = 54.25
    assert conv1.misfits[0].discarded_pixels == 1  # 53·4 + 11 = 223: pixel 224 is never seen
    assert "54.25" in conv1.flags[0] and "1 input pixel" in conv1.flags[0]
    assert rows["conv2"].misfits == (None, None)


def test_too_small_input_names_the_layer_and_the_smallest_input():
    # VGG-16 halves 32 → 1 through five pools; at 31 the fifth pool (features.30) gets 1×1.
    with pytest.raises(CnnlabError, match=r"features\.30 \(MaxPool2d\).*empty.*3×32×32"):
        cnnlab.summary("vgg_d", (3, 31, 31))
    # LeNet-5: c3's 5×5 window does not fit the 2×2 map left from an 8×8 input; 32×32 is the first to fit fc1.
    with pytest.raises(CnnlabError, match=r"features\.c3 .*empty.*1×32×32"):
        cnnlab.summary("lenet5", (1, 8, 8))


def test_googlenet_aux_heads_are_listed_and_training_only():
    result = cnnlab.summary("googlenet_torchvision")
    aux = [row for row in result.rows if row.training_only]
    assert aux and all(row.name.startswith(("aux1.", "aux2.")) for row in aux)
    assert result.totals.params_training_only == sum(row.params for row in aux)
    assert result.totals.params - result.totals.params_training_only == 6_624_904  # torchvision without aux
    assert result.totals.depth == 22  # the paper's 22 layers with parameters


class _HeadAtInferenceOnly(torch.nn.Module):
    """Trains on pooled features; at inference a head reads the flattened map, of the wrong size."""

    def __init__(self):
        super().__init__()
        self.conv, self.head, self.drop = torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(10, 2), torch.nn.Dropout()

    def forward(self, x):
        x = self.drop(self.conv(x))
        return self.head(x.flatten(1)) if not self.training else x.mean((2, 3))


class _TopLevelAuxiliary(torch.nn.Module):
    """An auxiliary layer directly under the model, called only in training."""

    def __init__(self):
        super().__init__()
        self.conv, self.head, self.aux = torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4, 2), torch.nn.Linear(4, 3)

    def forward(self, x):
        x = self.conv(x).mean((2, 3))
        if self.training:
            self.aux(x)
        return self.head(x)


def test_a_top_level_layer_called_only_in_training_is_training_only():
    result = cnnlab.summary(_TopLevelAuxiliary(), (3, 8, 8))
    assert {row.name: row.training_only for row in result.rows if row.type != "mean"} == {
        "conv": False, "head": False, "aux": True}
    assert result.totals.params_training_only == 4 * 3 + 3


def test_an_input_refused_only_at_inference_is_an_error_naming_the_layer():
    with pytest.raises(CnnlabError, match=r"head \(Linear\).*expects 10 input features, gets 144"):
        cnnlab.summary(_HeadAtInferenceOnly(), (3, 8, 8))


def test_dropout_allocates_only_in_training_and_the_traced_pass_stands_in_where_the_plain_one_cannot(monkeypatch):
    import cnnlab.analysis.analyze as analyze

    result = cnnlab.summary("alexnet_torchvision")
    dropouts = [row for row in result.rows if row.type == "Dropout"]
    assert len(dropouts) == 2 and not any(row.allocates for row in dropouts)  # it returns its input at inference
    assert not any(row.training_only for row in result.rows)

    def no_meta_kernel(*args):
        raise NotImplementedError("no meta kernel for this operator")

    monkeypatch.setattr(analyze, "modules_that_run", no_meta_kernel)
    again = cnnlab.summary("googlenet_torchvision")
    assert "an operator has no meta kernel at inference: training-only layers are not marked" in again.notes
    assert not any(row.training_only for row in again.rows)  # untold apart, so counted as inference
    assert again.totals.params == cnnlab.summary("googlenet_torchvision").totals.params


class _OwnTrainSwitch(torch.nn.Module):
    """Switches its auxiliary layer in its own `train()`, never reading `self.training` in forward."""

    def __init__(self):
        super().__init__()
        self.conv, self.aux, self.with_aux = torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 2, 1), True

    def train(self, mode: bool = True):
        self.with_aux = mode
        return super().train(mode)

    def forward(self, x):
        x = self.conv(x)
        return (x, self.aux(x)) if self.with_aux else x


def test_the_inference_pass_is_left_out_only_where_the_mode_cannot_change_what_runs(monkeypatch):
    import cnnlab.analysis.analyze as analyze

    passes = []
    real_pass = analyze.modules_that_run
    monkeypatch.setattr(analyze, "modules_that_run", lambda *args: passes.append(1) or real_pass(*args))
    skipped = cnnlab.summary("inception")  # convolutions, ReLUs, pooling, a concatenation: nothing reads the mode
    assert passes == []
    real_trace = analyze.trace

    def mode_always_matters(*args):
        traced = real_trace(*args)
        traced.mode_matters = True
        return traced

    monkeypatch.setattr(analyze, "trace", mode_always_matters)
    assert cnnlab.summary("inception") == skipped and passes == [1]  # with the pass: the same rows and totals
    monkeypatch.setattr(analyze, "trace", real_trace)
    cnnlab.summary("alexnet_torchvision")  # dropout reads it
    own = cnnlab.summary(_OwnTrainSwitch(), (3, 8, 8))  # its own train(): the mode may act unseen
    assert passes == [1, 1, 1]
    assert {row.name: row.training_only for row in own.rows} == {"conv": False, "aux": True}
    assert "training" not in torch.nn.Module.__dict__  # the watch on the flag is gone after the pass


def test_the_watch_on_the_mode_is_gone_after_a_failing_pass_too():
    with pytest.raises(CnnlabError):
        cnnlab.summary("lenet5", (1, 8, 8))
    assert "training" not in torch.nn.Module.__dict__
    module = torch.nn.Dropout()
    module.eval()
    assert module.__dict__["training"] is False and not module.training


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_a_torchscript_module_is_refused_in_one_line_naming_it():
    conv = torch.jit.script(torch.nn.Conv2d(3, 4, 3))
    with pytest.raises(CnnlabError, match=r"^Conv2d: the model is a TorchScript module, .* analyse the Python module"):
        cnnlab.summary(conv, (3, 8, 8))
    with pytest.raises(CnnlabError, match=r"^Sequential: 1 is a TorchScript module"):
        cnnlab.summary(torch.nn.Sequential(torch.nn.ReLU(), conv), (3, 8, 8))
