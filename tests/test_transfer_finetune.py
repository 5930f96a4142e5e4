"""Finetuning end to end on real digits: what must stay fixed stays fixed, bit for bit."""

import json

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.run import read_config
from cnnlab.run.checkpoint import load_checkpoint
from cnnlab.training.settings import TrainSettings
from cnnlab.transfer.export import export_model
from cnnlab.data.batching import per_class_subset
from cnnlab.training.spec import TrainSpec
from cnnlab.transfer.finetune import finetune, plan_transfer
from cnnlab.transfer.source import Source, load_source


@pytest.fixture
def source_file(tmp_path, pretrained_like):
    """A factory of pretrained-looking sources saved as cnnlab safetensors files."""
    return lambda name, input_shape, **kwargs: _save_source(tmp_path, pretrained_like(name, **kwargs), name, input_shape, kwargs)


def _save_source(tmp_path, model, name, input_shape, kwargs):
    metadata = {"cnnlab_model": name, "model_kwargs": json.dumps(kwargs), "input_shape": json.dumps(list(input_shape))}
    path = export_model(model, "safetensors", tmp_path / f"{name}.safetensors", input_shape, metadata)
    return path, model.state_dict()


def trained_weights(run):
    return load_checkpoint(run, "last")[:2]


def spec(out, **settings) -> TrainSpec:
    return TrainSpec("source", TrainSettings(dataset="digits", epochs=1, batch_size=10, **settings), out=out,
                     device="cpu", quiet=True)


def test_features_mode_trains_only_the_new_head_and_keeps_batch_norm_statistics(tmp_path, source_file):
    path, before = source_file("resnet20", (3, 32, 32), num_classes=10)
    result = finetune(str(path), spec(tmp_path / "run", lr=0.05, train_per_class=3), mode="features")
    after, state = trained_weights(result.run_dir)
    for key, value in after.items():
        if key == "conv1.weight":  # colour backbone on grey digits: the R, G, B filters summed
            assert torch.equal(value, before[key].sum(1, keepdim=True))
        elif not key.startswith("fc."):
            assert torch.equal(value, before[key]), key  # weights, running means/variances, batch counters
    assert after["fc.weight"].shape == (10, 64)
    assert len(state["optimizer"]["state"]) == 2  # momentum buffers for fc.weight and fc.bias only
    config = read_config(result.run_dir)
    recorded = config["source"]
    assert recorded["kind"] == "file" and recorded["mode"] == "features" and recorded["new_head"] == ["fc"]
    assert recorded["trainable_parameters"] == 64 * 10 + 10 and "layer3" in recorded["frozen"]
    assert recorded["input_adaptation"] == "first convolution 3 -> 1 input channels: sum of the R, G, B filters"
    assert config["model_kwargs"] == {"num_classes": 10, "in_channels": 1}
    assert config["dataset"]["train_size"] == 30 and config["dataset"]["train_subset"] == "3 images per class, seed 0"
    reloaded, _, _ = cnnlab.run.load_model(result.run_dir)  # the run reloads like any other
    assert reloaded.conv1.in_channels == 1


def test_unfreeze_from_trains_that_layer_on_at_the_lower_backbone_rate(tmp_path, source_file):
    path, before = source_file("lenet5", (1, 32, 32), num_classes=10)
    run = tmp_path / "run"
    code = main(["finetune", str(path), "--dataset", "digits", "--unfreeze-from", "classifier.f6", "--train-per-class", "5",
                 "--epochs", "1", "--batch-size", "10", "--lr", "0.05", "--out", str(run), "--device", "cpu", "--quiet"])
    assert code == 0
    after, state = trained_weights(run)
    for key in ("features.c1.weight", "features.c3.bias", "classifier.f5.weight"):
        assert torch.equal(after[key], before[key])
    assert not torch.equal(after["classifier.f6.weight"], before["classifier.f6.weight"])
    groups = state["optimizer"]["param_groups"]
    assert [g["lr_mult"] for g in groups] == [1.0, 0.1]
    assert groups[1]["lr"] == pytest.approx(0.1 * groups[0]["lr"])
    assert read_config(run)["source"]["frozen"] == ["features", "classifier.f5", "classifier.relu5"]


def lenet_source(name="lenet5"):
    return Source(cnnlab.create(name), name, {"num_classes": 10}, (1, 32, 32))


def test_finetune_mode_trains_everything_with_the_head_at_the_full_rate():
    plan = plan_transfer(lenet_source(), num_classes=3, in_channels=1, mode="finetune")
    head, backbone = plan.param_groups
    assert head["names"] == ["classifier.output.weight", "classifier.output.bias"] and head["lr_mult"] == 1.0
    assert backbone["lr_mult"] == 0.1 and len(backbone["names"]) == 8 and plan.frozen == []
    assert plan.model.classifier.output.out_features == 3


def test_impossible_plans_are_user_errors():
    with pytest.raises(CnnlabError, match="use it with --mode finetune"):
        plan_transfer(lenet_source(), 3, 1, mode="features", unfreeze_from="classifier")
    with pytest.raises(CnnlabError, match="did you mean classifier.f6"):
        plan_transfer(lenet_source(), 3, 1, unfreeze_from="classifier.f7")
    with pytest.raises(CnnlabError, match="no trainable weights"):  # LeNet-5 1998's RBF codes are fixed
        plan_transfer(lenet_source("lenet5_1998"), 10, 1, mode="features")


def test_few_shot_takes_the_same_count_of_every_class_and_depends_on_the_seed():
    labels = np.repeat(np.arange(4), [7, 9, 5, 12])
    chosen = per_class_subset(labels, 5, seed=0)
    assert np.bincount(labels[chosen]).tolist() == [5, 5, 5, 5]
    assert np.array_equal(chosen, per_class_subset(labels, 5, seed=0))
    assert not np.array_equal(chosen, per_class_subset(labels, 5, seed=1))
    with pytest.raises(CnnlabError, match="class 2 has only 5"):
        per_class_subset(labels, 6, seed=0)


def test_a_run_is_a_source_that_remembers_its_data(tmp_path, source_file):
    path, _ = source_file("lenet5", (1, 32, 32), num_classes=10)
    first = finetune(str(path), spec(tmp_path / "a", lr=0.01, train_per_class=1), mode="features")
    source = load_source(str(first.run_dir))
    assert source.record["kind"] == "run" and source.record["dataset"] == "digits" and source.input_shape == (1, 32, 32)
