"""The training loop through its Python API, on a tiny model and synthetic data so each run takes
a fraction of a second: exact resume, NaN stop, model selection, frozen modules, lr groups."""

import json

import pytest
import torch
from torch import nn

from cnnlab import run as rundir
from cnnlab.data.loaders import DeviceLoader, Loaders
from cnnlab.data.preprocess import Adapter
from cnnlab.errors import CnnlabError
from cnnlab.models import registry
from cnnlab.models.registry import Paper, register
from cnnlab.run.checkpoint import load_checkpoint
from cnnlab.training.resume import resume_spec
from cnnlab.training.settings import TrainSettings
from cnnlab.training.spec import Start, TrainSpec
from cnnlab.training.trainer import TrainingDiverged, train

SHAPE = (1, 8, 8)
CLASSES = 3


class Tiny(nn.Module):
    """Conv + BatchNorm + dropout: everything whose state a resume must restore."""

    def __init__(self, num_classes=CLASSES, in_channels=1, poison_after=None):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(16, num_classes))
        self.poison_after, self.calls = poison_after, 0

    def forward(self, x):
        out = self.classifier(self.features(x))
        if self.training:
            self.calls += 1
            if self.poison_after is not None and self.calls > self.poison_after:
                out = out * float("nan")
        return out


@pytest.fixture(autouse=True, scope="module")
def tiny_test_net():
    """The trainer builds models by zoo name: register the tiny net for this module's tests only,
    so it never shows up in other tests' `cnnlab list`."""
    register("tiny_test_net", family="test", paper=Paper("cnnlab tests", 2026, "a tiny net"), input_shape=SHAPE,
             num_classes=CLASSES)(Tiny)
    yield
    registry._BUILDERS.pop("tiny_test_net")
    registry._CARDS.pop("tiny_test_net")


def tiny_data(seed=0, val=True):
    """Three classes of 8x8 images told apart by brightness: learnable in a few steps."""
    g = torch.Generator().manual_seed(1234)
    n = 96
    y = torch.arange(n) % CLASSES
    x = (torch.rand(n, *SHAPE, generator=g) * 80 + (y * 80)[:, None, None, None]).to(torch.uint8)
    adapter = Adapter(SHAPE, SHAPE, (0.5,), (0.3,))
    train_n = 64 if val else n
    loader = lambda xs, ys, b, shuffle: DeviceLoader(xs, ys, b, adapter, shuffle=shuffle, seed=seed)  # noqa: E731
    return Loaders(
        train=loader(x[:train_n], y[:train_n], 16, True),
        val=loader(x[64:], y[64:], 32, False) if val else None,
        test=loader(x[64:], y[64:], 32, False),
        classes=["dark", "grey", "light"],
        mean=(0.5,),
        std=(0.3,),
        info={"dataset": "tiny"},
    )


def settings(**changes):
    base = TrainSettings(dataset="tiny", epochs=4, batch_size=16, lr=0.1, momentum=0.9, weight_decay=1e-3,
                         schedule="multistep", milestones=[3], log_interval=2, val_split=0)
    return base.replace(**changes)


def run(tmp_path, name, settings_=None, data=None, start=None, **spec):
    spec = TrainSpec("tiny_test_net", settings_ or settings(), out=tmp_path / name, quiet=True, **spec)
    return train(spec, data=data or tiny_data(), start=start)


def resume(run_dir, overrides=None, data=None, **options):
    return train(resume_spec(run_dir, overrides or {}, quiet=True, **options), data=data or tiny_data())


def start_with(model, groups=None, frozen=()):
    """A transfer start: `model` prebuilt, its parameters in `groups` ({"names", "lr_mult"})."""
    names = [name for name, _ in model.named_parameters()]
    return Start(model, groups or [{"names": names, "lr_mult": 1.0}], list(frozen), {"run": "somewhere"})


def test_resume_after_two_epochs_is_bit_identical_to_four_in_one_go(tmp_path):
    straight = run(tmp_path, "straight")
    run(tmp_path, "split", settings(epochs=2))
    resumed = resume(tmp_path / "split", {"epochs": 4})
    assert resumed.run_dir == tmp_path / "split"
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the resumed run's metrics continue the first part's: epochs 1..4, same numbers as in one go
    lines = lambda r: [(m["epoch"], m["split"], m["loss"]) for m in rundir.read_metrics(r)]  # noqa: E731
    assert lines(tmp_path / "split") == lines(tmp_path / "straight")
    assert [m["epoch"] for m in rundir.read_metrics(tmp_path / "split") if m["split"] == "train"] == [1, 2, 3, 4]


def test_resume_rejects_another_model_changed_settings_and_a_finished_run(tmp_path):
    run(tmp_path, "a", settings(epochs=1))
    with pytest.raises(CnnlabError, match="trained tiny_test_net, not lenet5"):
        resume_spec(tmp_path / "a", {}, model="lenet5")
    with pytest.raises(CnnlabError, match="drop --lr"):
        resume_spec(tmp_path / "a", {"lr": 0.5})
    with pytest.raises(CnnlabError, match="has finished its 1 epochs; .* --epochs N \\(N > 1\\)"):
        resume_spec(tmp_path / "a", {})
    with pytest.raises(CnnlabError, match="--out and --resume"):
        resume_spec(tmp_path / "a", {"epochs": 2}, out=tmp_path / "b")
    assert resume_spec(tmp_path / "a", {"lr": 0.1, "epochs": 2}).settings.epochs == 2  # an unchanged value is fine


def test_config_json_has_what_a_rerun_needs(tmp_path):
    result = run(tmp_path, "r", settings(epochs=1))
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["model"] == "tiny_test_net"
    assert config["model_kwargs"] == {"num_classes": 3, "in_channels": 1}
    assert config["input_shape"] == [1, 8, 8]
    assert config["dataset"]["classes"] == ["dark", "grey", "light"]
    assert config["train"]["lr"] == 0.1 and config["train"]["milestones"] == [3]
    assert config["precision"] == "fp32" and config["device"] == "cpu" and config["source"] is None
    assert set(config["versions"]) == {"cnnlab", "torch", "torchvision", "python", "numpy"}
    model, _, _ = rundir.load_model(result.run_dir)
    x = torch.randn(2, *SHAPE)
    assert torch.equal(model(x), result.model.eval()(x))


def test_lr_schedule_reaches_the_optimizer(tmp_path):
    result = run(tmp_path, "r", settings(epochs=4, milestones=[2, 3], gamma=0.5))
    lrs = [m["lr"] for m in result.history if m["split"] == "train"]
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.025])  # the lr of each epoch's last step


def test_best_is_chosen_on_validation_never_on_test(tmp_path):
    result = run(tmp_path, "r", settings(epochs=3))
    val = {m["epoch"]: m["top1"] for m in result.history if m["split"] == "val"}
    assert result.best["metric"] == "val_top1"
    assert result.best["value"] == max(val.values())
    assert result.best["epoch"] == min(e for e, v in val.items() if v == max(val.values()))
    _, state, _ = load_checkpoint(result.run_dir, "best")
    assert state["epoch"] == result.best["epoch"]


def test_without_validation_best_follows_training_loss(tmp_path):
    result = run(tmp_path, "r", settings(epochs=3), data=tiny_data(val=False))
    losses = {m["epoch"]: m["loss"] for m in result.history if m["split"] == "train"}
    assert result.best == {"epoch": min(losses, key=losses.get), "metric": "train_loss", "value": min(losses.values())}


def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    model = Tiny(poison_after=6)  # 4 steps per epoch: step 7 is the 3rd of epoch 2
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 7: .*last good checkpoint \(epoch 1\) is kept"):
        run(tmp_path, "r", start=start_with(model))
    weights, state, _ = load_checkpoint(tmp_path / "r", "last")
    assert state["epoch"] == 1 and state["step"] == 4
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert len([m for m in rundir.read_metrics(tmp_path / "r") if m["split"] == "train"]) == 1


def test_frozen_modules_keep_weights_and_batchnorm_statistics(tmp_path):
    model = Tiny()
    before = {k: v.clone() for k, v in model.features.state_dict().items()}
    head = [name for name, _ in model.named_parameters() if name.startswith("classifier")]
    result = run(tmp_path, "r", settings(epochs=1, schedule="constant", momentum=0),
                 start=start_with(model, [{"names": head, "lr_mult": 10.0}], ["features"]))
    after = result.model.features.state_dict()
    for key in before:
        assert torch.equal(before[key], after[key]), key  # weights and running mean/var untouched
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["source"] == {"run": "somewhere"}
    assert config["plan"] == {"groups": [{"names": head, "lr_mult": 10.0}], "frozen": ["features"]}


def test_a_resumed_transfer_keeps_its_frozen_modules_and_learning_rates(tmp_path):
    """The plan in config.json brings back what trains and how fast, with no transfer code: the
    resumed run ends exactly where one uninterrupted transfer does, its frozen layers untouched."""

    def seeded_start():
        torch.manual_seed(0)
        model = Tiny()
        head = [name for name, _ in model.named_parameters() if name.startswith("classifier")]
        return start_with(model, [{"names": head, "lr_mult": 10.0}], ["features"])

    start = seeded_start()
    initial = start.model.features[0].weight.clone()
    straight = run(tmp_path, "straight", settings(epochs=2), start=start)
    run(tmp_path, "split", settings(epochs=1), start=seeded_start())
    resumed = resume(tmp_path / "split", {"epochs": 2})
    for key, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
    assert torch.equal(resumed.model.features[0].weight, initial) and not resumed.model.features[0].weight.requires_grad


def test_learning_rate_multiplier_scales_the_group(tmp_path):
    model = Tiny()
    conv_before = model.features[0].weight.clone()
    names = [name for name, _ in model.named_parameters()]
    groups = [{"names": [n for n in names if n.startswith("features")], "lr_mult": 0.0},
              {"names": [n for n in names if n.startswith("classifier")], "lr_mult": 1.0}]
    result = run(tmp_path, "r", settings(epochs=1, weight_decay=0), start=start_with(model, groups))
    assert torch.equal(result.model.features[0].weight, conv_before)  # lr 0.1 x 0 = no update
    assert not torch.equal(result.model.classifier[1].weight, Tiny().classifier[1].weight)


def test_an_existing_output_folder_is_refused_and_left_alone(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "keep.txt").write_text("mine")
    with pytest.raises(CnnlabError, match="already exists"):
        run(tmp_path, "r")
    assert (tmp_path / "r" / "keep.txt").read_text() == "mine"


def test_thread_count_is_recorded_and_restored_after_the_run(tmp_path):
    before = torch.get_num_threads()
    result = run(tmp_path, "r", settings(epochs=1, threads=1))
    assert torch.get_num_threads() == before
    assert json.loads((result.run_dir / "config.json").read_text())["train"]["threads"] == 1


def test_early_stop_ends_the_run_after_patience_epochs_and_a_resume_respects_it(tmp_path):
    """The tiny task reaches its best validation accuracy within a few epochs; then `patience`
    epochs without a better one end the run, and a resume may only go on with more patience."""
    result = run(tmp_path, "r", settings(epochs=40, early_stop=2, milestones=[30]))
    val = [m["top1"] for m in result.history if m["split"] == "val"]
    best = result.best["epoch"]
    assert len(val) == best + 2 < 40  # stopped two epochs after the best
    assert max(val[best:]) <= val[best - 1]  # nothing after the best beat it
    with pytest.raises(CnnlabError, match="stopped early: no better validation accuracy for 2 epochs"):
        resume_spec(result.run_dir, {})
    longer = resume(result.run_dir, {"early_stop": 4})
    assert len([m for m in longer.history if m["split"] == "val"]) >= best + 4
    assert json.loads((result.run_dir / "config.json").read_text())["train"]["early_stop"] == 4
    with pytest.raises(CnnlabError, match="--early-stop watches the validation split"):
        run(tmp_path, "no-val", settings(early_stop=2), data=tiny_data(val=False))


def test_tensorboard_gets_the_same_scalars_as_metrics_jsonl(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = run(tmp_path, "r", settings(epochs=3), tensorboard=True)
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    records = rundir.read_metrics(result.run_dir)
    for split in ("train", "val", "test"):
        for key in ("loss", "top1"):
            logged = [(e.step, e.value) for e in events.Scalars(f"{split}/{key}")]
            expected = [(r["step"], r[key]) for r in records if r["split"] == split]
            assert [s for s, _ in logged] == [s for s, _ in expected]
            assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-6)  # float32 events
    assert [e.value for e in events.Scalars("train/lr")] == pytest.approx([r["lr"] for r in records
                                                                           if r["split"] == "train"], rel=1e-6)
