"""Schedules, recipes and the progress lines: the papers' numbers, checked as stated in the papers."""

import math
import subprocess
import sys

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.training.optim import Schedule
from cnnlab.training.progress import epoch_line
from cnnlab.training.settings import TrainSettings, default_recipe, list_recipes, load_recipe, resolve_settings


def test_resnet_cifar_recipe_is_the_papers_section_4_2():
    s, name = resolve_settings("resnet20", None, {"dataset": "cifar10"})
    assert name == "resnet-cifar-paper"
    assert (s.optimizer, s.lr, s.momentum, s.weight_decay, s.batch_size) == ("sgd", 0.1, 0.9, 1e-4, 128)
    assert (s.max_steps, s.schedule, s.schedule_unit, s.milestones, s.gamma) == (64000, "multistep", "step",
                                                                                 [32000, 48000], 0.1)
    assert s.val_split == 5000 and s.augment == ["crop:4", "flip"]
    # lr 0.1, divided by 10 at 32k and 48k iterations (352 steps per epoch on 45k images)
    schedule = Schedule(s, steps_per_epoch=math.ceil(45000 / 128), total_steps=64000)
    assert [schedule.factor(k) for k in (0, 31999, 32000, 47999, 48000, 63999)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01])


def test_alexnet_recipe_is_the_papers_section_5():
    s, _ = resolve_settings("alexnet", "alexnet-paper", {})
    assert (s.optimizer, s.lr, s.momentum, s.weight_decay, s.batch_size, s.schedule, s.gamma) == (
        "sgd", 0.01, 0.9, 5e-4, 128, "plateau", 0.1)
    assert "pca:0.1" in s.augment


def test_every_family_has_a_recipe_and_every_recipe_loads():
    names = list_recipes()
    for required in ("lenet5-mnist", "lenet5-digits", "alexnet-paper", "resnet-cifar-paper", "vgg-paper", "nin-cifar",
                     "googlenet-paper", "highway-cifar", "resnet-imagenet-paper"):
        assert required in names
    for name in names:
        recipe = load_recipe(name)
        assert recipe["description"] and recipe["reference"]
        TrainSettings.from_dict({k: v for k, v in recipe.items() if k not in ("description", "reference",
                                                                                 "defaults_for")}).validate()
    assert load_recipe("googlenet-paper")["aux_weight"] == 0.3
    assert default_recipe("lenet5", "digits") == "lenet5-digits"
    assert default_recipe("lenet5", "mnist") == "lenet5-mnist"


def test_flags_override_the_recipe_and_default_dataset_is_digits():
    s, name = resolve_settings("lenet5", None, {"lr": 0.2, "epochs": 3})
    assert (name, s.dataset, s.lr, s.epochs, s.batch_size) == ("lenet5-digits", "digits", 0.2, 3, 32)
    s, _ = resolve_settings("resnet20", "resnet-cifar-paper", {"epochs": 2})
    assert (s.epochs, s.max_steps) == (2, None)  # an epoch budget replaces the recipe's step budget
    s, _ = resolve_settings("resnet20", "resnet-cifar-paper", {"max_steps": 300})
    assert (s.epochs, s.max_steps) == (None, 300)


@pytest.mark.parametrize("change", [{"epochs": 0}, {"batch_size": 0}, {"lr": -0.1}, {"schedule": "linear"},
                                    {"schedule": "step"}, {"label_smoothing": 1.0}])
def test_bad_settings_are_user_errors(change):
    with pytest.raises(CnnlabError):
        TrainSettings(**change).validate()


def test_step_schedule_in_epochs_and_warmup():
    # GoogLeNet: "decreasing the learning rate by 4% every 8 epochs"
    s = TrainSettings(schedule="step", step_size=8, gamma=0.96)
    schedule = Schedule(s, steps_per_epoch=100, total_steps=10_000)
    assert schedule.factor(799) == 1 and schedule.factor(800) == pytest.approx(0.96)
    assert schedule.factor(1600) == pytest.approx(0.96**2)
    warm = Schedule(TrainSettings(warmup=2), steps_per_epoch=10, total_steps=100)  # 20 warm-up steps
    assert [warm.factor(k) for k in (0, 9, 19, 50)] == pytest.approx([1 / 20, 10 / 20, 1, 1])


def test_cosine_and_onecycle_shapes():
    cosine = Schedule(TrainSettings(schedule="cosine"), steps_per_epoch=10, total_steps=100)
    assert cosine.factor(0) == 1 and cosine.factor(50) == pytest.approx(0.5) and cosine.factor(100) == pytest.approx(0)
    one = Schedule(TrainSettings(schedule="onecycle"), steps_per_epoch=10, total_steps=100)
    assert one.factor(0) == pytest.approx(1 / 25) and one.factor(30) == pytest.approx(1)
    assert one.factor(100) == pytest.approx(1 / 25e4)


def test_plateau_divides_after_patience_epochs_without_improvement():
    schedule = Schedule(TrainSettings(schedule="plateau", patience=2, gamma=0.1), steps_per_epoch=1, total_steps=10)
    for loss in (1.0, 0.9, 0.95, 0.91):  # improvement, then 2 epochs without: still patient
        schedule.end_epoch(loss)
    assert schedule.factor(0) == 1
    schedule.end_epoch(0.92)  # third epoch without improvement
    assert schedule.factor(0) == pytest.approx(0.1)
    restored = Schedule(TrainSettings(schedule="plateau"), 1, 10)
    restored.load_state_dict(schedule.state_dict())
    assert restored.factor(0) == pytest.approx(0.1)


def test_epoch_line_reads_like_a_log():
    line = epoch_line(epoch=3, epochs=10, train={"loss": 0.41, "top1": 0.87}, val={"loss": 0.5, "top1": 0.851},
                      lr=0.1, seconds=12.34, images_per_s=5120.4)
    assert line == "epoch 3/10  train loss 0.4100 acc 87.00%  val loss 0.5000 acc 85.10%  lr 0.1  5,120 img/s  12.3s"


def test_progress_module_does_not_import_torch():
    code = "import sys, cnnlab.training.progress; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
