"""A catalogue of bad inputs across every command that reads or writes a run, on a real trained run
and damaged copies of it. Each one must end in exit code 2 with exactly one line on stderr (no
traceback), and leave every file of the runs involved byte-identical (the whole tree is hashed
before and after, so a half-written or temporary file would show too)."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli import main

QUICK = ["--epochs", "2", "--batch-size", "64", "--device", "cpu", "--quiet"]
LONG = "x" * 300  # longer than any file system's name limit (255)


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def edit_config(run: Path, change) -> None:
    config = json.loads((run / "config.json").read_text())
    change(config)
    (run / "config.json").write_text(json.dumps(config))


def edit_state(run: Path, change) -> None:
    path = run / "checkpoints" / "last" / "state.pt"
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)


def _drop(key):
    return lambda d: d.pop(key)


# damage name -> what it does to a copy of the trained run
DAMAGE = {
    "config-not-json": lambda r: (r / "config.json").write_text("{not json"),
    "config-torn": lambda r: (r / "config.json").write_text((r / "config.json").read_text()[:100]),
    "config-list": lambda r: (r / "config.json").write_text("[1, 2]"),
    "config-no-model": lambda r: edit_config(r, _drop("model")),
    "config-shape-text": lambda r: edit_config(r, lambda c: c.update(input_shape="1x32x32")),
    "config-no-classes": lambda r: edit_config(r, lambda c: c["dataset"].pop("classes")),
    "config-lr-text": lambda r: edit_config(r, lambda c: c["train"].update(lr="fast")),
    "config-unknown-setting": lambda r: edit_config(r, lambda c: c["train"].update(speed=3)),
    "config-no-train": lambda r: edit_config(r, _drop("train")),
    "config-classes-5": lambda r: edit_config(r, lambda c: c["model_kwargs"].update(num_classes=5)),
    "config-unknown-model": lambda r: edit_config(r, lambda c: c.update(model="lenet6")),
    "config-data-gone": lambda r: edit_config(r, lambda c: c["dataset"].update(dataset="mnist", data_dir="/gone")),
    "scratch": lambda r: edit_config(r, lambda c: c.update(engine="scratch")),
    "state-no-optimizer": lambda r: edit_state(r, lambda s: s.pop("optimizer")),
    "state-step-text": lambda r: edit_state(r, lambda s: s.update(step="many")),
    "state-foreign": lambda r: edit_state(r, lambda s: s.pop("format")),
    "state-garbage": lambda r: [(r / "checkpoints" / n / "state.pt").write_bytes(b"\x80\x04garbage")
                                for n in ("last", "best")],
    "weights-garbage": lambda r: [(r / "checkpoints" / n / "model.safetensors").write_bytes(b"\x08\x00\x00\x00{bad")
                                  for n in ("last", "best")],
    "no-checkpoints": lambda r: shutil.rmtree(r / "checkpoints"),
    "metrics-bad-line": lambda r: (r / "metrics.jsonl").write_text(
        "{broken\n" + (r / "metrics.jsonl").read_text()),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A trained run, its damaged copies, and the odd files and folders the cases point at."""
    root = tmp_path_factory.mktemp("catalogue")
    run = root / "run"
    assert main(["train", "lenet5", "--out", str(run), *QUICK]) == 0
    assert main(["export", str(run), "--format", "safetensors", "--out", str(root / "exported.safetensors")]) == 0
    paths = {"root": root, "run": run}
    for name, damage in DAMAGE.items():
        shutil.copytree(run, root / name)
        damage(root / name)
        paths[name] = root / name
    (root / "a-file").write_text("a file, not a folder")
    (root / "notarun").mkdir()
    (root / "empty").mkdir()
    (root / "not-an-image.png").write_text("text")
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(root / "digit.png")
    one_class = root / "one-class"
    for part in ("train", "val"):
        (one_class / part / "cat").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(one_class / part / "cat" / "0.png")
    return paths


# (id, argv with {placeholders}, expected fragment of the error line)
CASES = [
    # train: settings, names, folders
    ("epochs-0", "train lenet5 --epochs 0 --out {root}/new", "--epochs must be positive"),
    ("batch-negative", "train lenet5 --batch-size -1 --out {root}/new", "--batch-size must be positive"),
    ("lr-0", "train lenet5 --lr 0 --out {root}/new", "--lr must be positive"),
    ("dataset-typo", "train lenet5 --dataset mnits --out {root}/new", "did you mean 'mnist'"),
    ("recipe-typo", "train lenet5 --recipe lenet5-mnst --out {root}/new", "did you mean lenet5-mnist"),
    ("model-typo", "train lenet6 --out {root}/new", "did you mean lenet5"),
    ("no-model", "train --out {root}/new", "name the model to train"),
    ("out-is-a-run", "train lenet5 --out {run}", "already exists"),
    ("out-under-a-file", "train lenet5 --out {root}/a-file/run", "a part of the path is a file"),
    ("out-name-too-long", "train lenet5 --out {root}/" + LONG, "the name is too long"),
    ("val-split-fraction-0", "train lenet5 --val-split 0.0001 --out {root}/new", "holds out"),
    ("val-split-not-whole", "train lenet5 --val-split 2.5 --out {root}/new", "whole count"),
    ("val-split-too-many", "train lenet5 --val-split 5000 --out {root}/new", "whole count"),
    ("per-class-0", "train lenet5 --train-per-class 0 --out {root}/new", "--train-per-class must be positive"),
    ("per-class-too-many", "train lenet5 --train-per-class 1000 --out {root}/new", "fewer than --train-per-class"),
    ("bad-augment", "train lenet5 --augment rotate --out {root}/new", "bad augmentation"),
    ("step-without-size", "train lenet5 --schedule step --out {root}/new", "needs --step-size"),
    ("checkpoint-every-0", "train lenet5 --checkpoint-every 0 --out {root}/new", "--checkpoint-every must be"),
    ("checkpoint-minutes-negative", "train lenet5 --checkpoint-minutes -1 --out {root}/new", "must not be negative"),
    ("imagefolder-no-dir", "train lenet5 --dataset imagefolder --out {root}/new", "imagefolder needs --data-dir"),
    ("imagefolder-one-class", "train lenet5 --dataset imagefolder --data-dir {root}/one-class --out {root}/new",
     "a classifier needs at least two"),
    ("mnist-not-there", "train lenet5 --dataset mnist --data-dir {root}/empty --out {root}/new", "mnist not found"),
    ("eval-batch-0", "train lenet5 --eval-batch-size 0 --out {root}/new", "--eval-batch-size must be positive"),
    # train --resume: what a resumed run may and may not do
    ("resume-finished", "train --resume {run}", "has finished its 2 epochs"),
    ("resume-with-out", "train --resume {run} --epochs 3 --out {root}/new", "--out and --resume"),
    ("resume-other-model", "train resnet20 --resume {run}", "trained lenet5, not resnet20"),
    ("resume-changed-lr", "train --resume {run} --epochs 3 --lr 0.5", "drop --lr"),
    ("resume-recipe", "train --resume {run} --epochs 3 --recipe lenet5-mnist", "keeps its recipe"),
    ("resume-missing", "train --resume {root}/missing", "does not exist"),
    ("resume-not-a-run", "train --resume {root}/notarun", "is not a cnnlab run"),
    ("resume-scratch", "train --resume {scratch} --epochs 3", "'cnnlab scratch train'"),
    ("resume-config-torn", "train --resume {config-torn} --epochs 3", "is not valid JSON"),
    ("resume-lr-text", "train --resume {config-lr-text} --epochs 3", "setting 'lr' must be float"),
    ("resume-unknown-setting", "train --resume {config-unknown-setting} --epochs 3", "unknown setting(s) speed"),
    ("resume-no-train", "train --resume {config-no-train} --epochs 3", "has no 'train' settings"),
    ("resume-state-no-optimizer", "train --resume {state-no-optimizer} --epochs 3", "'optimizer' is missing"),
    ("resume-state-step-text", "train --resume {state-step-text} --epochs 3", "'step' is missing or not a int"),
    ("resume-state-foreign", "train --resume {state-foreign} --epochs 3", "not a cnnlab training checkpoint"),
    ("resume-no-checkpoints", "train --resume {no-checkpoints} --epochs 3", "has no checkpoint 'last'"),
    # reading damaged runs
    ("eval-config-not-json", "eval {config-not-json}", "is not valid JSON"),
    ("eval-config-list", "eval {config-list}", "must hold a JSON object"),
    ("eval-no-model", "eval {config-no-model}", "has no 'model'"),
    ("eval-unknown-model", "eval {config-unknown-model}", "did you mean lenet5"),
    ("eval-no-classes", "eval {config-no-classes}", "has no 'dataset.classes'"),
    ("eval-state-garbage", "eval {state-garbage}", "not a readable cnnlab checkpoint"),
    ("eval-weights-garbage", "eval {weights-garbage}", "not a readable cnnlab checkpoint"),
    ("eval-weights-misfit", "eval {config-classes-5}",
     "classifier.output.weight has shape (10, 84), the model needs (5, 84)"),
    ("eval-no-val-split", "eval {run} --split val", "held out no validation split"),
    ("eval-data-gone", "eval {config-data-gone}", "that folder is gone: give --data-dir"),
    ("eval-other-data-missing", "eval {run} --dataset mnist --data-dir {root}/empty", "mnist not found"),
    ("export-shape-text", "export {config-shape-text} --format safetensors --out {root}/new.safetensors",
     "'input_shape' must be a list of three positive integers"),
    ("curves-metrics-bad-line", "viz curves {metrics-bad-line} --out {root}/new", "is damaged at line 1"),
    ("report-missing", "report {root}/missing", "does not exist"),
    ("report-not-a-run", "report {root}/notarun", "is not a cnnlab run"),
    # writing: never a run's own files, never over a file without --force
    ("export-over-config", "export {run} --format safetensors --out {run}/config.json --force",
     "it is the config.json of run"),
    ("export-over-best", "export {run} --format safetensors --out {run}/checkpoints/best/model.safetensors --force",
     "inside the checkpoints of run"),
    ("export-over-metrics", "export {run} --format safetensors --out {run}/metrics.jsonl --force",
     "it is the metrics.jsonl of run"),
    ("export-over-lock", "export {run} --format safetensors --out {run}/.lock --force", "it is the .lock of run"),
    ("export-existing", "export {run} --format safetensors --out {root}/exported.safetensors", "add --force"),
    ("export-to-folder", "export {run} --format safetensors --out {root}/empty", "is a folder"),
    ("export-under-a-file", "export {run} --format safetensors --out {root}/a-file/m.safetensors",
     "a part of the path is a file"),
    ("export-name-too-long", "export {run} --format safetensors --out {root}/" + LONG, "the name is too long"),
    ("export-permission-denied", "export {run} --format safetensors --out /sys/cnnlab.safetensors",
     "permission denied"),  # sysfs refuses new files, even to root
    ("features-over-predictions", "features {run} --out {run}/predictions.npz --force", "predictions.npz of run"),
    ("features-existing", "features {run} --out {root}/exported.safetensors", "add --force"),
    ("features-bad-layer", "features {run} --layer c9 --out {root}/new.npz", "has no layer 'c9'"),
    ("report-exists", "report {run}", "report.html already exists"),
    ("viz-into-checkpoints", "viz filters {run} --out {run}/checkpoints", "inside the checkpoints of run"),
    ("finetune-out-is-a-run", "finetune {run} --out {run} --epochs 1", "already exists"),
    ("finetune-missing-source", "finetune {root}/missing --out {root}/new", "neither a run folder nor a weights file"),
    ("finetune-imagefolder-no-dir", "finetune {run} --dataset imagefolder --out {root}/new",
     "imagefolder needs --data-dir"),
    # images and shapes
    ("predict-not-an-image", "predict {run} {root}/not-an-image.png", "cannot read image"),
    ("predict-missing-image", "predict {run} {root}/missing.png", "does not exist"),
    ("cam-bad-layer", "viz cam {run} {root}/digit.png --layer c9 --out {root}/new", "no layer 'c9'"),
    ("summary-2d-shape", "summary lenet5 --input 1x2", "bad input shape"),
    ("summary-4d-shape", "summary lenet5 --input 1x1x32x32", "bad input shape"),
    ("viz-shape-for-run", "viz architecture {run} --input-shape 1x32x32 --out {root}/new", "for zoo models"),
]


@pytest.mark.parametrize("argv, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_changes(world, argv, expected, capsys):
    argv = [part.format(**{k: str(v) for k, v in world.items()}) for part in argv.split()]
    before = tree_hash(world["root"])
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("cnnlab: error: ") and "Traceback" not in err
    assert expected in err, err
    assert tree_hash(world["root"]) == before  # every run, every file, byte for byte; no temporary file


def test_the_catalogue_is_long_enough():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


def test_decompression_bombs_are_one_line_naming_the_limit(world, monkeypatch, capsys):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # so a 100 x 100 image is a "bomb" (> 2 x the limit)
    before = tree_hash(world["root"])
    for argv in (["predict", str(world["run"]), str(world["root"] / "digit.png")],
                 ["viz", "activations", str(world["run"]), str(world["root"] / "digit.png"), "--out",
                  str(world["root"] / "new")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and "decompression-bomb guard" in err and "2,000 pixels" in err
    assert tree_hash(world["root"]) == before


def test_a_torn_last_metrics_line_is_ignored_with_one_warning_and_repaired_on_resume(world, capsys):
    from cnnlab import run as rundir

    torn = world["root"] / "torn"
    shutil.copytree(world["run"], torn)
    records = rundir.read_metrics(world["run"])
    with open(torn / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "split": "tr')  # a kill in the middle of an append
    capsys.readouterr()
    assert rundir.read_metrics(torn) == records
    assert "the last line is incomplete" in capsys.readouterr().err
    assert main(["train", "--resume", str(torn), "--epochs", "3", "--quiet"]) == 0
    repaired = rundir.read_metrics(torn, quiet=True)
    assert [(r["epoch"], r["split"]) for r in repaired] == [(1, "train"), (1, "test"), (2, "train"), (2, "test"),
                                                            (3, "train"), (3, "test")]
    assert (torn / "metrics.jsonl").read_text().endswith("}\n")
