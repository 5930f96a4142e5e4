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
    code, out, _ = run(capsys, "summary", "alexnet", "--lang", "zh", "--columns", "lecture,rf")
    assert code == 0
    header = out.splitlines()[2].split()
    assert header == ["层次", "类型", "输入维度", "卷积核数/神经元数", "滤波器边长", "步长", "Padding", "输出维度",
                      "内存", "参数", "感受野", "等效步长", "等效填充"]  # the notes' table, in its order
    assert "96×55×55" in out and "参数总数: 60,965,224" in out
    code, out, _ = run(capsys, "summary", "alexnet", "--lang", "zh", "--layout", "hwc")
    assert "55×55×96" in out and "(H×W×C)" in out.splitlines()[0]


def test_batch_scales_memory_not_macs():
    one, many = cnnlab.summary("vgg_d"), cnnlab.summary("vgg_d", batch=256)
    assert many.totals.macs == one.totals.macs  # MACs are per image
    assert many.rows[0].output_bytes == one.rows[0].output_bytes  # per image; render multiplies
    assert "784 MiB" in render(many)  # conv1_1: 64·224·224·4 B · 256 = 784 MiB
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


def test_print_shows_the_table_and_notebooks_an_html_table():
    result = cnnlab.summary("lenet5")
    assert str(result) == render(result)
    page = result._repr_html_()
    assert page.startswith("<div>") and page.count("<tr>") == len(result.rows) + 1
    assert "<td>features.c1</td>" in page and '<td style="text-align:right">156</td>' in page


@pytest.mark.parametrize("name", cnnlab.list_models())
def test_the_default_table_fits_120_columns(name):
    from cnnlab.analysis.formatters import width

    for depth in (None, 1):
        result = cnnlab.summary(name, depth=depth)
        for lang in ("en", "zh"):
            assert max(width(line) for line in render(result, lang=lang).splitlines()) <= 120, (depth, lang)
    wide = render(cnnlab.summary(name), wide=True)
    assert wide.splitlines()[2].split()[-1] == "notes" or not any(row.flags for row in cnnlab.summary(name).rows)


def test_columns_and_wide_choose_what_is_shown(capsys):
    code, out, _ = run(capsys, "summary", "alexnet", "--columns", "shape,rf")
    assert out.splitlines()[2].split() == ["layer", "type", "input", "output", "RF", "jump", "eff.", "pad"]
    code, out, _ = run(capsys, "summary", "googlenet", "--wide")
    header = out.splitlines()[2]
    for column in ("kernel", "stride", "padding", "filters/units", "input", "other ops", "start", "notes"):
        assert column in header
    assert "training only" in out and "ceil mode" in out  # notes inline
    code, out, _ = run(capsys, "summary", "googlenet")
    notes = out[out.index("\nnotes:\n"):]
    assert "[1] (224 − 7 + 2·3)/2 + 1 = 112.5 → 112" in notes and "training only" in notes
    code, _, err = run(capsys, "summary", "alexnet", "--columns", "kernel,colour")
    assert code == 2 and "unknown column 'colour'" in err


def test_memory_units_are_binary_and_labelled_so():
    from cnnlab.analysis.formatters import human_bytes

    assert [human_bytes(n) for n in (512, 1024, 802_816, 3 * 2**30)] == ["512 B", "1 KiB", "784 KiB", "3 GiB"]
    text = render(cnnlab.summary("vgg_d"))
    assert " KB" not in text and " MB" not in text and " GB" not in text


def test_the_concatenation_row_lists_every_input():
    rows = {row.name: row for row in cnnlab.summary("googlenet").rows}
    cat = rows["inception3a.cat"]
    assert cat.input_shapes == ((64, 28, 28), (128, 28, 28), (32, 28, 28), (32, 28, 28))
    from cnnlab.analysis.formatters import inputs_text

    assert inputs_text(cat) == "(64+128+32+32)×28×28" and inputs_text(cat, "hwc") == "28×28×(64+128+32+32)"
    data = json.loads(render(cnnlab.summary("googlenet"), "json"))
    assert next(r for r in data["rows"] if r["name"] == "inception3a.cat")["input_shapes"][1] == [128, 28, 28]


def test_lenet5_1998_gather_copies_are_marked_and_not_counted():
    result = cnnlab.summary("lenet5_1998")
    copies = [row.name for row in result.rows if row.implementation_copy]
    assert copies == ["features.c3.getitem", "features.c3.getitem#2", "features.c3.getitem#3", "features.c3.cat",
                      "features.c3.getitem#4"]
    c3 = sum(row.output_values for row in result.rows if row.name.startswith("features.c3") and row.counted_bytes)
    assert c3 == 16 * 10 * 10  # the paper's C3: 16 maps of 10×10, once
    # the network's tensors of the paper's figure 2: C1, S2, C3, S4, C5, F6, output (+ flatten's view)
    assert result.totals.activation_bytes == 4 * (2 * 6 * 28 * 28 + 2 * 6 * 14 * 14 + 2 * 16 * 10 * 10
                                                  + 2 * 16 * 5 * 5 + 2 * 120 + 2 * 84 + 10)
    assert all("implementation copy" in row.flags[0] for row in result.rows if row.implementation_copy)


def test_shapes_are_exactly_three_positive_numbers(capsys):
    for bad in ("1x2", "1x1x32x32", "0x32x32", "3x-1x4", "x"):
        code, _, err = run(capsys, "summary", "lenet5", "--input", bad)
        assert code == 2 and err.count("\n") == 1 and "three positive whole numbers" in err, bad
    code, _, err = run(capsys, "viz", "architecture", "lenet5", "--input-shape", "1x32")
    assert code == 2 and "three positive whole numbers" in err


def test_fits_prints_the_largest_batch_and_its_parts(capsys):
    code, out, _ = run(capsys, "summary", "vgg_d", "--fits", "24GiB")
    assert code == 0
    batch = int(out.splitlines()[0].rsplit(" ", 1)[1])
    from cnnlab.analysis.fits import memory_at

    result = cnnlab.summary("vgg_d")
    assert memory_at(result, batch, "fp32", "sgd").total <= 24 * 2**30 < memory_at(result, batch + 1, "fp32", "sgd").total
    text = " ".join(out.split())  # long lines wrap at 120 columns
    for part in ("weights 527.79 MiB", "optimizer state 527.79 MiB", "gradients so far", "saved activations still alive",
                 "temporary", f"batch {batch + 1} would need"):
        assert part in text
    code, out, _ = run(capsys, "summary", "vgg_d", "--fits", "24GB", "--optimizer", "adam", "--format", "json")
    data = json.loads(out)
    assert data["budget"] == 24 * 10**9 and data["optimizer"] == "adam" and data["batch"] < batch
    code, _, err = run(capsys, "summary", "vgg_d", "--fits", "lots")
    assert code == 2 and "bad memory size 'lots'" in err


def test_summary_of_a_run_folder(capsys, tmp_path):
    from cnnlab.run import CONFIG

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    dataset = {"dataset": "imagefolder", "classes": ["a", "b", "c", "d"], "mean": [0.5] * 3, "std": [0.2] * 3}
    (run_dir / CONFIG).write_text(json.dumps({"model": "lenet5", "model_kwargs": {"num_classes": 4, "in_channels": 3},
                                              "input_shape": [3, 32, 32], "dataset": dataset}))
    code, out, _ = run(capsys, "summary", str(run_dir), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["model"] == "lenet5 (run run)" and data["input_shape"] == [3, 32, 32]
    # LeNet-5 built as config.json says: 3 input channels (C1) and 4 classes (the output layer)
    assert data["totals"]["params"] == (5 * 5 * 3 * 6 + 6) + 2_416 + 48_120 + 10_164 + (84 * 4 + 4)
    code, _, err = run(capsys, "summary", str(run_dir), "--input", "3x64x64")
    assert code == 2 and "drop --input" in err
    (run_dir / CONFIG).write_text("{not json")
    code, _, err = run(capsys, "summary", str(run_dir))
    assert code == 2 and err.count("\n") == 1 and "not valid JSON" in err
    code, _, err = run(capsys, "summary", str(tmp_path))
    assert code == 2 and "is not a cnnlab run" in err


def test_calc_speaks_chinese_and_never_imports_torch():
    import subprocess
    import sys

    script = ("import sys; from cnnlab.cli import main; "
              "main(['calc', 'conv', '--size', '224', '--kernel', '11', '--stride', '4', '--channels', '3', "
              "'--filters', '96', '--lang', 'zh']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "输出尺寸 = (W − F + 2P)/S + 1 = (224 − 11 + 2·0)/4 + 1 = 54.25 → 54" in out
    assert "警告" in out and "34,944 (34,848 个权重 + 96 个偏置)" in out
    assert out.splitlines()[-1] == "False"


def test_compare_in_chinese(capsys):
    code, out, _ = run(capsys, "compare", "lenet5", "alexnet", "--lang", "zh", "--layout", "hwc")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["模型", "输入维度", "参数"] and "227×227×3" in out


def test_every_analysis_flag_says_what_it_does_and_its_default():
    import argparse

    from cnnlab.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    parsers = [commands[name] for name in ("summary", "compare", "list", "show")]
    calc = next(a for a in commands["calc"]._actions if isinstance(a, argparse._SubParsersAction))
    parsers += list(calc.choices.values())
    for parser in parsers:
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, (parser.prog, action.dest)
            if action.option_strings and not action.required:
                assert "default" in action.help, (parser.prog, action.dest)
