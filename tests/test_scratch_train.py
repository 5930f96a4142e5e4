"""`cnnlab scratch train` and `cnnlab scratch gradcheck` on real data: accuracy, the run directory,
the data preparation, a ResNet-20 on CIFAR-10 next to torch, and one-line errors."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from cnnlab import run as rundir
from cnnlab import scratch
from cnnlab.cli import main
from cnnlab.data import dataset_info, load_arrays
from cnnlab.scratch.data import fit_to, prepare, random_flip, random_shift
from cnnlab.scratch.optim import SGD
from cnnlab.scratch.train import evaluate, train_epoch, train_step

def run_config(model: str, model_kwargs: dict) -> dict:
    """A run's config.json as much as the scratch engine reads of it."""
    dataset = {"dataset": "cifar10", "classes": [str(k) for k in range(10)], "mean": [0.5] * 3, "std": [0.25] * 3}
    return {"model": model, "model_kwargs": model_kwargs, "input_shape": [3, 32, 32], "dataset": dataset}



@pytest.fixture(autouse=True)
def one_blas_thread():
    """The engine's matrix products are small: on a shared 2-core machine one BLAS thread ran
    these tests 4× faster than the default (threads fighting other processes)."""
    with threadpool_limits(1):
        yield


def test_digits_reach_97_percent_and_the_run_is_an_ordinary_cnnlab_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["scratch", "train", "lenet5", "--dataset", "digits", "--epochs", "10", "--out", str(run)]) == 0
    assert "epoch 10/10" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["train"]["lr"] == 0.05  # digits' own default (0.02 elsewhere)
    tests = [r for r in rundir.read_metrics(run) if r["split"] == "test"]
    assert [r["epoch"] for r in tests] == list(range(1, 11))
    assert tests[-1]["top1"] >= 0.97  # the last epoch, not the best one: no choosing on the test set

    # 'cnnlab eval' (torch model, torch preprocessing) reads the run and measures the same numbers
    train_losses = [r["loss"] for r in rundir.read_metrics(run) if r["split"] == "train"]
    best = tests[train_losses.index(min(train_losses))]  # "best" = lowest training loss
    assert main(["eval", str(run)]) == 0
    report = json.loads((run / "eval-digits.json").read_text())
    assert report["checkpoint"] == "best" and report["top1"] == best["top1"]
    assert abs(report["loss"] - best["loss"]) < 1e-5

    # and so does the scratch twin loaded from the checkpoint
    images, labels, _ = load_arrays("digits", "test")
    x = prepare(images, 32, dataset_info("digits").mean, dataset_info("digits").std)
    assert (scratch.load_run(run)(x).argmax(axis=1) == labels).mean() == best["top1"]


def test_bad_arguments_are_one_line_user_errors(tmp_path, capsys):
    assert main(["scratch", "train", "lenet5", "--epochs", "0", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_mnist_short_run_learns(shared_data):
    """A short check on the real files: 8,000 training images at lr 0.05, 2,000 more at lr 0.005,
    then 2,000 test images (the full run, 99.0%, is in docs/scratch.md)."""
    info = dataset_info("mnist")
    (x, y, _), (xt, yt, _) = (load_arrays("mnist", split, shared_data) for split in ("train", "test"))
    x, xt = prepare(x[:10000], 32, info.mean, info.std), prepare(xt[:2000], 32, info.mean, info.std)
    model = scratch.lenet5(seed=0)
    optimizer, rng = SGD(model.parameters(), lr=0.05, momentum=0.9), np.random.default_rng(0)
    train_epoch(model, optimizer, x[:8000], y[:8000], 32, rng)
    optimizer.lr = 0.005
    train_epoch(model, optimizer, x[8000:], y[8000:10000], 32, rng)
    assert evaluate(model, xt, yt[:2000])["top1"] >= 0.9


def test_mnist_is_padded_to_32_and_digits_resized_like_torch():
    images = np.random.default_rng(0).integers(0, 256, (3, 1, 28, 28), dtype=np.uint8)
    padded = fit_to(images, 32)
    assert padded.shape == (3, 1, 32, 32) and padded[..., :2, :].max() == 0 and padded[..., :, 30:].max() == 0
    assert np.array_equal(padded[..., 2:30, 2:30], images)

    small = np.random.default_rng(1).integers(0, 256, (3, 1, 8, 8), dtype=np.uint8)
    expected = F.interpolate(torch.tensor(small, dtype=torch.float64), size=32, mode="bilinear", align_corners=False)
    assert np.abs(fit_to(small, 32) - expected.numpy()).max() < 1e-4  # float32 result of 0..255 values


def test_config_records_what_repeats_the_run(tmp_path):
    run = tmp_path / "run"
    assert main(["scratch", "train", "lenet5", "--epochs", "1", "--lr", "0.03", "--seed", "4", "--quiet", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "lenet5" and config["input_shape"] == [1, 32, 32]
    assert config["train"]["lr"] == 0.03 and config["train"]["seed"] == 4 and config["train"]["augment"] == {"shift": 2, "fill": "edge", "flip": False}
    assert config["dataset"]["dataset"] == "digits" and config["dataset"]["classes"] == [str(d) for d in range(10)]
    assert config["dataset"]["adapt"] == ["bilinear resize 8x8 -> 32x32"] and config["seed"] == 4


def test_random_shift_moves_each_image_by_at_most_the_given_pixels():
    x = np.zeros((200, 1, 9, 9), np.float32)
    x[:, 0, 4, 4] = 1.0  # one bright pixel in the centre of every image
    moved = random_shift(x, 2, np.random.default_rng(0))
    rows, cols = np.unravel_index(moved.reshape(200, -1).argmax(axis=1), (9, 9))
    assert moved.shape == x.shape and np.all(moved.reshape(200, -1).sum(axis=1) == 1.0)
    assert set(rows - 4) == set(cols - 4) == {-2, -1, 0, 1, 2}


def test_random_flip_mirrors_about_half_the_images():
    x = np.random.default_rng(0).standard_normal((400, 2, 3, 5))
    flipped = random_flip(x, np.random.default_rng(1))
    mirrored = np.array([np.array_equal(a, b[..., ::-1]) for a, b in zip(x, flipped)])
    kept = np.array([np.array_equal(a, b) for a, b in zip(x, flipped)])
    assert np.all(mirrored ^ kept) and 0.4 < mirrored.mean() < 0.6


def test_resnet20_on_real_cifar10_follows_torch_step_by_step(shared_data):
    """The same initial weights and batches of real images: ten SGD steps of the scratch ResNet-20 and
    of the zoo's give the same losses to 1e-10 in float64, and the loss falls. (In float32 the two
    drift apart by 1e-3 within ten steps: training amplifies rounding ~1,000-fold here, as the float64
    differences grow from 4e-16 to 3e-13; docs/scratch.md shows that whole float32 runs still agree.)"""
    import cnnlab

    info = dataset_info("cifar10")
    images, labels, _ = load_arrays("cifar10", "train", shared_data)
    x, y = prepare(images[:64], 32, info.mean, info.std).astype(np.float64), labels[:64]
    torch.manual_seed(0)
    reference = cnnlab.create("resnet20").double()
    model = scratch.build("resnet20").astype(np.float64)
    model.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    torch_optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    losses, torch_losses = [], []
    for step in range(10):
        batch = slice(32 * (step % 2), 32 * (step % 2) + 32)
        losses.append(train_step(model, optimizer, x[batch], y[batch])[0])
        torch_optimizer.zero_grad()
        loss = F.cross_entropy(reference(torch.from_numpy(x[batch])), torch.from_numpy(y[batch]))
        loss.backward()
        torch_optimizer.step()
        torch_losses.append(loss.item())
    assert np.abs(np.array(losses) - torch_losses).max() < 1e-10
    assert losses[-1] < 0.8 * losses[0]


def test_cifar10_resnet20_run_is_an_ordinary_cnnlab_run(shared_data, tmp_path, capsys):
    """A tiny run (256 training images) that cnnlab's torch tools read like any other, and that
    'cnnlab scratch gradcheck RUN' checks with its trained weights."""
    run = tmp_path / "run"
    assert main(["scratch", "train", "resnet20", "--dataset", "cifar10", "--data-dir", str(shared_data), "--train-size", "256",
                 "--test-size", "200", "--epochs", "2", "--batch-size", "64", "--quiet", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "resnet20" and config["model_kwargs"] == {"num_classes": 10, "in_channels": 3}
    assert config["train"]["augment"] == {"shift": 4, "fill": 0.0, "flip": True} and config["train"]["lr"] == 0.1
    assert config["dataset"]["train_size"] == 256 and config["dataset"]["test_size"] == 200
    records = rundir.read_metrics(run)
    train_losses = [r["loss"] for r in records if r["split"] == "train"]
    best = [r for r in records if r["split"] == "test"][train_losses.index(min(train_losses))]
    assert main(["eval", str(run), "--data-dir", str(shared_data)]) == 0
    assert json.loads((run / "eval-cifar10.json").read_text())["checkpoint"] == "best"
    # the run scored the first 200 test images: its scratch twin does again, and the torch model that
    # 'cnnlab eval' loads (batch-norm statistics included) gives the same logits
    images, labels, _ = load_arrays("cifar10", "test", shared_data)
    x = prepare(images[:200], 32, dataset_info("cifar10").mean, dataset_info("cifar10").std)
    logits = scratch.load_run(run)(x)
    assert (logits.argmax(axis=1) == labels[:200]).mean() == best["top1"]
    torch_model, _, _ = rundir.load_model(run)
    with torch.no_grad():
        assert np.abs(torch_model(torch.from_numpy(x)).numpy() - logits).max() < 1e-4
    capsys.readouterr()
    assert main(["scratch", "gradcheck", str(run), "--size", "8", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert f"the weights of {run}" in out and "ok: every layer agrees with torch autograd to 1e-10" in out


def test_gradcheck_prints_every_layer(capsys):
    assert main(["scratch", "gradcheck", "resnet20", "--size", "8", "--samples", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(("conv1", "layer", "fc", "(whole"))}
    expected = [path for path, _ in scratch.resnet20().leaves() if path.startswith(("conv1", "layer", "fc"))]
    assert set(expected) <= set(rows) and "(whole" in rows
    assert all(float(rows[name][3]) < 1e-10 and float(rows[name][2]) < 1e-6 for name in expected)


@pytest.mark.parametrize("argv, message", [
    (["scratch", "train", "alexnet"], "the scratch engine has no model 'alexnet'; it builds: lenet5, resnet20"),
    (["scratch", "gradcheck", "vgg16"], "the scratch engine has no model 'vgg16'; it builds: lenet5"),
    (["scratch", "gradcheck", "lenet5", "--size", "28"], "lenet5 cannot take 1×28×28 input: Linear(400→120)"),
    (["scratch", "gradcheck", "resnet20", "--size", "1", "--batch-size", "1"], "needs more than one value per channel"),
    (["scratch", "train", "resnet20", "--train-size", "0"], "--train-size and --test-size must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_run_the_engine_cannot_build_is_one_line(tmp_path, capsys):
    rundir.write_config(tmp_path, run_config("googlenet", {}))
    assert main(["scratch", "gradcheck", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trained 'googlenet', whose layers the scratch engine lacks; it builds: lenet5" in err


def test_adam_run_records_its_optimizer_and_checkpoints_its_moments(tmp_path):
    from cnnlab.run.checkpoint import load_checkpoint

    run = tmp_path / "run"
    assert main(["scratch", "train", "lenet5", "--optimizer", "adam", "--epochs", "1", "--quiet", "--out", str(run)]) == 0
    train = json.loads((run / "config.json").read_text())["train"]
    assert train["optimizer"] == "adam" and train["lr"] == 1e-3 and "momentum" not in train
    weights, state, _ = load_checkpoint(run, "last")
    assert state["engine"] == "scratch" and state["step"] == 45  # ceil(1,437 / 32) steps
    assert set(state["exp_avg"]) == set(weights) and state["exp_avg_sq"]["features.c1.weight"].min() > 0
