"""Training on the real data sets in ../shared/data (required in CI, skipped elsewhere)."""

from cnnlab import run as rundir
from cnnlab.cli import main


def test_lenet5_mnist_recipe_reaches_99_percent_at_its_final_epoch(shared_data, tmp_path):
    """The recipe as a user runs it (3 epochs, about 15 s on two idle cores): the last epoch's test
    accuracy, never a checkpoint chosen on the test set."""
    out = tmp_path / "mnist"
    argv = ["train", "lenet5", "--recipe", "lenet5-mnist", "--data-dir", str(shared_data / "mnist"), "--device", "cpu",
            "--quiet", "--out", str(out)]
    assert main(argv) == 0
    records = rundir.read_metrics(out)
    test = [r for r in records if r["split"] == "test"]
    assert len(test) == 3 and test[-1]["top1"] >= 0.990, test
    assert rundir.read_config(out)["dataset"]["train_size"] == 60000


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
