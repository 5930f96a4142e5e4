"""The analyzer's commands and formats: summary, calc, compare; every zoo model analyses."""

import csv
import io
import json

import pytest

import cnnlab
from cnnlab.analysis import render
from cnnlab.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_formats_share_one_result(capsys):
    result = cnnlab.summary("lenet5")
    data = json.loads(render(result, "json"))
    assert data["totals"]["params"] == 61_706
    assert [row["name"] for row in data["rows"]] == [row.name for row in result.rows]
    table = list(csv.DictReader(io.StringIO(render(result, "csv"))))
    assert len(table) == len(result.rows)
    assert table[0]["output (C×H×W)"] == "6×28×28" and table[0]["params"] == "156"
    markdown = render(result, "md")
    assert markdown.count("\n| ") == len(result.rows) + 1  # header + one line per row
    code, out, _ = run(capsys, "summary", "lenet5", "--format", "md")
    assert code == 0 and out == markdown


def test_chinese_headers_use_the_lecture_terms(capsys):
    code, out, _ = run(capsys, "summary", "alexnet", "--lang", "zh")
    assert code == 0
    for term in ("层次", "输入维度", "输出维度", "卷积核数", "步长", "内存", "参数", "感受野"):
        assert term in out
    assert "96×55×55" in out


def test_batch_scales_memory_not_macs():
    one, many = cnnlab.summary("vgg_d"), cnnlab.summary("vgg_d", batch=256)
    assert many.totals.macs == one.totals.macs  # MACs are per image
    assert many.rows[0].output_bytes == one.rows[0].output_bytes  # per image; render multiplies
    assert "784 MB" in render(many)  # conv1_1: 64·224·224·4 B · 256 = 784 MB
    assert many.totals.training_memory.activations > 200 * one.totals.training_memory.activations


def test_depth_folds_blocks_with_summed_figures():
    full = cnnlab.summary("resnet18")
    folded = cnnlab.summary("resnet18", depth=2)
    rows = {row.name: row for row in folded.rows}
    block = rows["layer1.0"]
    assert block.type == "BasicBlock" and block.output_shape == (64, 56, 56)
    assert block.params == 2 * (64 * 64 * 9) + 2 * 2 * 64  # two 3×3 convolutions and two batch norms
    assert sum(row.macs for row in folded.rows) == sum(row.macs for row in full.rows)
    assert sum(row.params for row in folded.rows) == full.totals.params
    stages = cnnlab.summary("resnet18", depth=1)
    assert [row.name for row in stages.rows if row.name.startswith("layer")] == [f"layer{i}" for i in range(1, 5)]
    assert {row.name: row for row in stages.rows}["layer4"].receptive_field[0].size == 435


def test_calc_conv_pool_stack(capsys):
    code, out, _ = run(capsys, "calc", "conv", "--size", "227", "--kernel", "11", "--stride", "4",
                       "--padding", "0", "--channels", "3", "--filters", "96")
    assert code == 0
    assert "= 55" in out and "warning" not in out
    assert "34,944" in out  # 11·11·3·96 + 96
    assert "105,415,200" in out  # 55·55·96·363
    code, out, _ = run(capsys, "calc", "conv", "--size", "224", "--kernel", "11", "--stride", "4")
    assert "54.25 → 54" in out and "1 input pixel(s) lost" in out
    code, out, _ = run(capsys, "calc", "pool", "--size", "55", "--kernel", "3", "--stride", "2")
    assert "= 27" in out
    code, out, _ = run(capsys, "calc", "stack", "--kernel", "3", "--layers", "3")
    assert "7×7" in out and "27C²" in out and "49C²" in out
    code, out, _ = run(capsys, "calc", "stack", "--kernel", "3", "--layers", "2", "--channels", "64")
    assert "5×5" in out and f"{2 * 9 * 64 * 64:,}" in out and f"{25 * 64 * 64:,}" in out


def test_user_errors_are_one_line(capsys):
    code, _, err = run(capsys, "calc", "conv", "--size", "3", "--kernel", "5")
    assert code == 2 and err.count("\n") == 1 and "empty output" in err
    code, _, err = run(capsys, "summary", "vgg_d", "--input", "3x16x16")
    assert code == 2 and err.count("\n") == 1 and "3×32×32" in err
    code, _, err = run(capsys, "summary", "vgg_d", "--input", "3by16")
    assert code == 2 and "bad input shape" in err
    code, _, err = run(capsys, "summary", "resnet19")
    assert code == 2 and "unknown model" in err


def test_compare_lineage(capsys):
    code, out, _ = run(capsys, "compare", "lenet5", "alexnet", "vgg_d", "googlenet", "resnet50", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["model"] for row in rows] == ["lenet5", "alexnet", "vgg_d", "googlenet", "resnet50"]
    assert [int(row["params"]) for row in rows[:3]] == [61_706, 60_965_224, 138_357_544]
    assert [int(row["depth"]) for row in rows] == [5, 8, 16, 22, 50]
    assert rows[2]["RF"] == "212"


@pytest.mark.parametrize("name", cnnlab.list_models())
def test_every_zoo_model_analyses(name):
    result = cnnlab.summary(name)
    assert result.totals.params == sum(row.params for row in result.rows)  # no parameter left unaccounted
    assert result.totals.macs > 0 and result.totals.activation_bytes > 0
    if result.model.startswith(("resnet", "plain")) and result.input_shape[1] == 32:
        n = (result.totals.depth - 2) // 6  # CIFAR nets: 6n + 2 weighted layers (He et al. 4.2)
        assert result.totals.depth == 6 * n + 2 and str(n * 6 + 2) in result.model
    card = cnnlab.card(name)
    if card.params is not None:
        assert result.totals.params - result.totals.params_training_only in (card.params, result.totals.params)
    # card.macs holds the papers' rounded budgets (ResNet Table 1, GoogLeNet's "1.5 billion"):
    # docs/analysis.md compares them; exact agreement is tested against torchvision's metadata.
