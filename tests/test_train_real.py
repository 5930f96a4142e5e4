"""Training on the real data sets in ../shared/data (required in CI, skipped elsewhere)."""

from cnnlab import run as rundir
from cnnlab.cli import main


def test_lenet5_mnist_one_epoch_reaches_98_percent(shared_data, tmp_path):
    out = tmp_path / "mnist"
    argv = ["train", "lenet5", "--recipe", "lenet5-mnist", "--epochs", "1", "--data-dir", str(shared_data / "mnist"),
            "--device", "cpu", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    records = rundir.read_metrics(out)
    test = [r for r in records if r["split"] == "test"][-1]
    val = [r for r in records if r["split"] == "val"][-1]
    assert test["top1"] >= 0.98, test
    assert val["top1"] >= 0.97  # the 5,000 held-out training images
    assert rundir.read_config(out)["dataset"]["train_size"] == 55000


def test_resnet_cifar_paper_recipe_runs_end_to_end(shared_data, tmp_path):
    out = tmp_path / "cifar"
    argv = ["train", "resnet20", "--recipe", "resnet-cifar-paper", "--max-steps", "4", "--data-dir",
            str(shared_data / "cifar10"), "--device", "cpu", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    config = rundir.read_config(out)
    assert config["recipe"] == "resnet-cifar-paper" and config["train"]["milestones"] == [32000, 48000]
    assert config["dataset"]["train_size"] == 45000 and config["dataset"]["val_size"] == 5000
    assert config["dataset"]["augment"] == ["crop:4", "flip"]
    records = rundir.read_metrics(out)
    assert [(r["split"], r["step"]) for r in records] == [("train", 4), ("val", 4), ("test", 4)]
    assert records[0]["lr"] == 0.1
    assert (out / "checkpoints" / "best" / "model.safetensors").is_file()
