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


def _benchmark(name):
    import importlib.util
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))  # the scripts import their shared helper module
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_degradation_verdict_reads_the_papers_two_claims():
    verdict = _benchmark("degradation").verdict
    row = lambda train, test: {"state": "done", "train_error": train, "test_error": test}  # noqa: E731
    paper_like = {"plain20": row(8.0, 9.0), "plain56": row(12.0, 13.0), "resnet20": row(3.0, 8.8),
                  "resnet56": row(1.0, 7.0)}
    assert sum("**holds**" in line for line in verdict(paper_like)) == 4
    swapped = dict(paper_like, plain56=row(6.0, 8.0), resnet56=row(4.0, 9.5))
    assert sum("**does not hold**" in line for line in verdict(swapped)) == 4
    partial = verdict({"plain20": dict(row(8.0, 9.0), state="resume")})
    assert any("not known" in line for line in partial) and any("unfinished" in line for line in partial)


def test_benchmark_runs_resume_a_checkpointed_run_and_restarts_one_without(tmp_path):
    module = _benchmark("resumable")
    run = tmp_path / "resnet20"
    (run / "checkpoints" / "last").mkdir(parents=True)
    assert module.state_of(run) == "new"  # killed before its first checkpoint was complete
    command = module.train_command("resnet20", run, "cpu", ["--recipe", "resnet-cifar-paper"])
    assert "--recipe" in command and "--resume" not in command and not run.exists()
    (run / "checkpoints" / "last").mkdir(parents=True)
    (run / "checkpoints" / "last" / "state.pt").write_bytes(b"")
    command = module.train_command("resnet20", run, "cpu", ["--lr", "0.05"])
    assert command[-2:] == ["--resume", str(run)] and "--lr" not in command
    (run / "summary.md").write_text("")
    assert module.state_of(run) == "done"
