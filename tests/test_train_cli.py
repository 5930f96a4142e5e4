"""`cnnlab train`, `eval` and `predict` end to end on the embedded digits, and every bad input
getting one line, exit code 2, and nothing lost."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab import run as rundir
from cnnlab.cli import main
from cnnlab.run.checkpoint import save_checkpoint

QUICK = ["--epochs", "1", "--batch-size", "64", "--warmup", "0", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "lenet"
    assert main(["train", "lenet5", "--out", str(out), *QUICK]) == 0
    return out


def test_the_readmes_main_command_reaches_98_percent(tmp_path, capsys):
    """`cnnlab train lenet5` as the README's quick start runs it: the digits recipe, every epoch."""
    out = tmp_path / "run"
    assert main(["train", "lenet5", "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"report: {out / 'report.html'}"
    records = [r for r in rundir.read_metrics(out) if r["split"] == "test"]
    assert len(records) == 10 and records[-1]["top1"] >= 0.98  # the final epoch, never the best one


def error_of(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("cnnlab: error: ")
    return err


def test_train_writes_the_run_directory(lenet_run):
    config = json.loads((lenet_run / "config.json").read_text())
    assert config["model"] == "lenet5" and config["recipe"] == "lenet5-digits"
    assert config["model_kwargs"] == {"num_classes": 10, "in_channels": 1}
    assert config["input_shape"] == [1, 32, 32]
    assert config["dataset"]["dataset"] == "digits" and config["dataset"]["train_size"] == 1437
    assert config["train"]["epochs"] == 1 and config["train"]["batch_size"] == 64  # flags beat the recipe
    assert config["train"]["lr"] == 0.05 and config["train"]["schedule"] == "cosine"  # the recipe's values
    records = rundir.read_metrics(lenet_run)
    assert [(r["epoch"], r["split"]) for r in records] == [(1, "train"), (1, "test")]
    assert records[0]["step"] == -(-1437 // 64) and records[1]["top1"] > 0.15  # above chance (0.10) after 23 steps
    assert "| features.c1 | Conv2d |" in (lenet_run / "summary.md").read_text()  # the analyzer's table
    for which in ("last", "best"):
        assert (lenet_run / "checkpoints" / which / "model.safetensors").is_file()


def test_eval_reports_and_saves_the_confusion_matrix(lenet_run, capsys):
    assert main(["eval", str(lenet_run), "--device", "cpu"]) == 0
    report = json.loads((lenet_run / "eval-digits.json").read_text())
    confusion = np.array(report["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == report["images"] == 360
    assert report["top1"] == pytest.approx(np.trace(confusion) / 360)
    per_class = confusion.diagonal() / confusion.sum(1)
    assert report["per_class_accuracy"] == pytest.approx(per_class.tolist())
    assert report["top1_error"] == pytest.approx(1 - report["top1"]) and report["top5"] >= report["top1"]
    test_record = [r for r in rundir.read_metrics(lenet_run) if r["split"] == "test"][-1]
    assert report["top1"] == pytest.approx(test_record["top1"])  # the same model, the same test set
    assert "top-1 accuracy" in capsys.readouterr().out


def test_predict_prints_top5_with_class_names(lenet_run, tmp_path, capsys):
    from sklearn.datasets import load_digits

    digit = load_digits().images[0]  # a zero, 0..16
    Image.fromarray((digit * 255 / 16).astype(np.uint8)).save(tmp_path / "zero.png")
    assert main(["predict", str(lenet_run), str(tmp_path / "zero.png"), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("zero.png") and len(lines) == 6
    probabilities = [float(line.split()[-1].rstrip("%")) for line in lines[1:]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 100.01
    assert lines[1].split()[1] in [str(d) for d in range(10)]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "--epochs must be positive"),
        (["--batch-size", "-1"], "--batch-size must be positive"),
        (["--lr", "0"], "--lr must be positive"),
        (["--dataset", "mnits"], "unknown dataset 'mnits' (did you mean 'mnist'?)"),
        (["--recipe", "lenet5-mnst"], "did you mean lenet5-mnist"),
    ],
)
def test_bad_training_settings_get_one_line_and_exit_2(flags, message, tmp_path, capsys):
    assert message in error_of(["train", "lenet5", "--out", str(tmp_path / "r"), *QUICK, *flags], capsys)
    assert not (tmp_path / "r").exists()


def test_unknown_model_gets_suggestions(capsys):
    assert "did you mean lenet5" in error_of(["train", "lenet6", *QUICK], capsys)


def test_existing_output_folder_is_refused_and_untouched(lenet_run, capsys):
    before = (lenet_run / "metrics.jsonl").read_bytes()
    assert "already exists" in error_of(["train", "lenet5", "--out", str(lenet_run), *QUICK], capsys)
    assert (lenet_run / "metrics.jsonl").read_bytes() == before


def test_resume_with_a_different_model_is_refused(lenet_run, capsys):
    before = (lenet_run / "checkpoints" / "last" / "state.pt").read_bytes()
    assert "trained lenet5, not resnet20" in error_of(["train", "resnet20", "--resume", str(lenet_run)], capsys)
    assert (lenet_run / "checkpoints" / "last" / "state.pt").read_bytes() == before


def test_a_checkpoint_that_is_not_ours_is_refused(lenet_run, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text((lenet_run / "config.json").read_text())
    weights = {k: v for k, v in rundir.load_model(lenet_run)[0].state_dict().items()}
    save_checkpoint(foreign / "checkpoints", "last", weights, {"epoch": 1})  # no trainer marker
    assert "not a cnnlab training checkpoint" in error_of(["train", "lenet5", "--resume", str(foreign)], capsys)
    assert "not a cnnlab training checkpoint" in error_of(["eval", str(foreign), "--device", "cpu"], capsys)
    (foreign / "checkpoints" / "last" / "state.pt").write_bytes(b"\x80\x04garbage")
    assert "not a readable cnnlab checkpoint" in error_of(["eval", str(foreign), "--device", "cpu"], capsys)


def test_eval_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert "is not a cnnlab run" in error_of(["eval", str(tmp_path)], capsys)


def test_predict_with_an_unreadable_image(lenet_run, tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert "cannot read image" in error_of(["predict", str(lenet_run), str(tmp_path / "bad.png")], capsys)


def test_python_dash_m_cnnlab_lists_the_recipes():
    out = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--list-recipes"], capture_output=True, text=True,
                         check=True).stdout
    for name in ("lenet5-digits", "lenet5-mnist", "alexnet-paper", "resnet-cifar-paper", "vgg-paper", "nin-cifar",
                 "googlenet-paper", "highway-cifar", "resnet-imagenet-paper"):
        assert name in out


def test_loaded_checkpoint_tensors_are_plain(lenet_run):
    state = torch.load(lenet_run / "checkpoints" / "last" / "state.pt", weights_only=True)
    assert state["format"] == "cnnlab-train-1" and state["epoch"] == 1
    assert all(torch.is_tensor(v) or isinstance(v, int) for v in state["rng"][0].values())
