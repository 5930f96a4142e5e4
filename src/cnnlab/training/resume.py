"""Resume has one home: what a resumed run keeps, what it may change, and when it cannot go on.

A resumed run continues from its last checkpoint with its own settings, model, data and transfer
plan (all read from config.json); of the settings only `EXTENDABLE` may change. The command line
passes the settings the user gave, as given; this module decides.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.run import data_dir_of, read_config
from cnnlab.run.checkpoint import SCRATCH, check_trainer_state, load_checkpoint
from cnnlab.training.settings import TrainSettings
from cnnlab.training.spec import TrainSpec

EXTENDABLE = ("epochs", "max_steps", "threads", "early_stop")  # the settings a resumed run may change


def _flags(names) -> str:
    return ", ".join("--" + name.replace("_", "-") for name in names)


def resume_spec(run: str | os.PathLike, overrides: dict, *, model: str | None = None, recipe: str | None = None,
                out=None, data_dir=None, **options) -> TrainSpec:
    """The specification that continues `run`. `overrides`: the settings the user gave (name ->
    value); `options`: TrainSpec's operational fields (device, quiet, checkpoint_every, ...); the
    checkpoint cadence the run recorded applies unless `options` gives it."""
    from cnnlab.models import resolve

    run = Path(run)
    config = read_config(run)
    if config.get("engine") == SCRATCH:
        raise CnnlabError(f"{run} was trained by the NumPy engine ('cnnlab scratch train'), which 'cnnlab train' "
                          "cannot continue: start a new run with 'cnnlab scratch train'")
    if out is not None:
        raise CnnlabError(f"--out and --resume do not go together: a resumed run continues in its own folder {run}")
    if recipe is not None:
        raise CnnlabError("a resumed run keeps its recipe: drop --recipe")
    if model is not None and resolve(model) != resolve(config["model"]):
        raise CnnlabError(f"{run} trained {config['model']}, not {model}: resume it with 'cnnlab train --resume {run}'")
    if "train" not in config:
        raise CnnlabError(f"{run}/config.json has no 'train' settings: it was not written by 'cnnlab train'")
    saved = TrainSettings.from_dict(config["train"], f"{run}/config.json 'train'")
    changed = sorted(k for k, v in overrides.items() if k not in EXTENDABLE and v != getattr(saved, k))
    if changed:
        raise CnnlabError(f"a resumed run keeps its settings; drop {_flags(changed)} (only {_flags(EXTENDABLE)} "
                          "may change)")
    settings = saved.replace(**{k: v for k, v in overrides.items() if k in EXTENDABLE}).validate()
    _, state, folder = load_checkpoint(run, "last")
    check_trainer_state(state, folder)
    _refuse_finished(run, settings, state)
    for name, value in config.get("options", {}).items():  # the run's own cadence and logging, unless given
        if name in TrainSpec.OPTIONS:
            options.setdefault(name, value)
    return TrainSpec(model=config["model"], settings=settings, recipe=config.get("recipe"),
                     model_kwargs=config["model_kwargs"], input_shape=tuple(config["input_shape"]),
                     data_dir=data_dir_of(config, data_dir), resume=run, **options)


class RunFinished(CnnlabError):
    """The run has trained all it was asked to; only its settings' limits can let it go on."""


def _refuse_finished(run: Path, settings: TrainSettings, state: dict) -> None:
    epoch, step = state["epoch"], state["step"]
    if settings.max_steps is not None and step >= settings.max_steps:
        raise RunFinished(f"{run} has finished: it reached --max-steps {settings.max_steps}; to train it longer, "
                          f"resume with --max-steps N (N > {step})")
    best = state.get("best") or {}
    if settings.early_stop is not None and best and epoch - best["epoch"] >= settings.early_stop:
        raise RunFinished(f"{run} stopped early: no better validation accuracy for {epoch - best['epoch']} epochs "
                          f"since epoch {best['epoch']}; to train it longer, resume with --early-stop N "
                          f"(N > {epoch - best['epoch']})")
    if settings.epochs is not None and epoch >= settings.epochs:
        raise RunFinished(f"{run} has finished its {settings.epochs} epochs; to train it longer, resume with "
                          f"--epochs N (N > {epoch})")
