"""The GPU-side recipes and scripts of issue 5, checked without a GPU: they load, resolve and
their numbers fit together (the GPU measurements themselves live in docs/training.md)."""

from cnnlab.training.optim import Schedule
from cnnlab.training.settings import default_recipe, list_recipes, load_recipe, resolve_settings

CIFAR10_TRAIN = 50_000


def test_resnet_cifar_fast_is_listed_and_resolves_for_resnet20():
    assert "resnet-cifar-fast" in list_recipes()
    settings, recipe = resolve_settings("resnet20", "resnet-cifar-fast", {})
    assert recipe == "resnet-cifar-fast" and settings.dataset == "cifar10"
    # whole batches only: a compiled model never meets a short last batch (one shape, one compilation)
    assert CIFAR10_TRAIN % settings.batch_size == 0 and settings.val_split == 0
    assert settings.compile == "default" and settings.nesterov and settings.label_smoothing == 0.1
    # not the default for resnet20 on cifar10: that stays the paper's recipe
    assert default_recipe("resnet20", "cifar10") == "resnet-cifar-paper"
    assert "NOT MEASURED" in load_recipe("resnet-cifar-fast")["reference"]


def test_resnet_cifar_fast_schedule_peaks_after_warmup_and_ends_near_zero():
    settings, _ = resolve_settings("resnet20", "resnet-cifar-fast", {})
    steps_per_epoch = CIFAR10_TRAIN // settings.batch_size
    total = settings.epochs * steps_per_epoch
    schedule = Schedule(settings, steps_per_epoch, total)
    factors = [schedule.factor(s) for s in range(total)]
    assert factors.index(max(factors)) == settings.warmup * steps_per_epoch  # one-cycle's top at the warm-up's end
    assert factors[0] == 1 / 25 and factors[-1] < 1e-3


def test_resnet_cifar_fast_flags_still_override():
    settings, _ = resolve_settings("resnet20", "resnet-cifar-fast", {"max_steps": 3})
    assert settings.max_steps == 3 and settings.epochs is None
