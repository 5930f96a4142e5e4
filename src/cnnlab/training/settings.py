"""Training hyper-parameters and the recipes that ship them.

A recipe is a JSON file in `cnnlab/recipes/` (package data): the paper's hyper-parameters as data,
plus "description", "reference" (where the numbers come from) and "defaults_for" (the
"model:dataset" patterns it is the default recipe for). Command-line flags override recipe
values; values neither gives come from `TrainSettings`' defaults.

Schedules are stated in the unit the paper uses: `schedule_unit` "epoch" or "step" (iterations)
applies to `milestones`, `step_size` and `warmup`; `max_steps` stops a run after that many
optimizer steps (the ResNet paper's "stop at 64k iterations"), `epochs` after that many epochs,
whichever comes first.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import json
import types
import typing
from dataclasses import dataclass, field
from importlib import resources

from cnnlab.errors import CnnlabError

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "step", "multistep", "cosine", "onecycle", "plateau")
UNITS = ("epoch", "step")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainSettings:
    """Everything that decides what a run computes (saved as config.json's "train")."""

    dataset: str = "digits"
    epochs: int | None = 10
    max_steps: int | None = None
    batch_size: int = 128  # global: split across DDP ranks
    eval_batch_size: int | None = None  # default 4 x batch_size
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    schedule_unit: str = "epoch"
    milestones: list[float] = field(default_factory=list)
    step_size: float | None = None
    gamma: float = 0.1
    patience: int = 5  # plateau: epochs without improvement before lr *= gamma
    warmup: float = 0  # linear warm-up length, in schedule_unit
    label_smoothing: float = 0.0
    aux_weight: float = 0.3  # GoogLeNet's auxiliary classifiers
    val_split: float = 0  # images (>= 1) or fraction (< 1) held out of the training set
    train_per_class: int | None = None  # few-shot: keep this many training images per class
    augment: list[str] = field(default_factory=list)
    seed: int = 0
    precision: str = "auto"
    compile: str | None = None  # torch.compile mode ("default", "reduce-overhead", "max-autotune")
    sync_bn: bool = False
    log_interval: int = 50  # steps between reads of the on-device metrics
    workers: int = 2
    threads: int | None = None  # PyTorch threads on CPU (None: its default); tiny models run faster on 1
    early_stop: int | None = None  # stop after this many epochs without a better validation top-1

    def validate(self) -> "TrainSettings":
        positive = {"batch_size": self.batch_size, "lr": self.lr}
        if self.epochs is not None:
            positive["epochs"] = self.epochs
        if self.max_steps is not None:
            positive["max_steps"] = self.max_steps
        for name in ("eval_batch_size", "threads", "train_per_class", "early_stop"):
            if getattr(self, name) is not None:
                positive[name] = getattr(self, name)
        for name, value in positive.items():
            if not value > 0:
                raise CnnlabError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.epochs is None and self.max_steps is None:
            raise CnnlabError("give --epochs or --max-steps (how long to train)")
        for name, value, allowed in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("schedule-unit", self.schedule_unit, UNITS),
            ("precision", self.precision, PRECISIONS),
        ):
            if value not in allowed:
                raise CnnlabError(f"unknown --{name} '{value}': choose from {', '.join(allowed)}")
        if self.schedule == "step" and not self.step_size:
            raise CnnlabError("--schedule step needs --step-size (epochs or steps between decays)")
        if self.schedule == "multistep" and not self.milestones:
            raise CnnlabError("--schedule multistep needs --milestones")
        if not 0 <= self.label_smoothing < 1:
            raise CnnlabError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.weight_decay < 0 or self.momentum < 0 or self.warmup < 0 or self.val_split < 0:
            raise CnnlabError("--weight-decay, --momentum, --warmup and --val-split must not be negative")
        return self

    def replace(self, **changes) -> "TrainSettings":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, origin: str = "settings") -> "TrainSettings":
        """Settings from a recipe or a config.json: unknown names and values of the wrong type are
        one-line errors naming `origin` (a hand-edited file must not become a traceback)."""
        if not isinstance(values, dict):
            raise CnnlabError(f"{origin}: the settings must be a JSON object")
        types = typing.get_type_hints(cls)
        unknown = sorted(set(values) - set(types))
        if unknown:
            raise CnnlabError(f"{origin}: unknown setting(s) {', '.join(unknown)}")
        for name, value in values.items():
            if not _has_type(value, types[name]):
                raise CnnlabError(f"{origin}: setting '{name}' must be {_type_name(types[name])}, not {value!r}")
        return cls(**values)


def _has_type(value, kind) -> bool:
    """isinstance for the annotations TrainSettings uses (int | None, list[str], float ...)."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return any(_has_type(value, k) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        return isinstance(value, list) and all(_has_type(v, item) for v in value)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _type_name(kind) -> str:
    return str(kind).replace("typing.", "").replace("<class '", "").replace("'>", "")


RECIPE_INFO = ("description", "reference", "defaults_for")


def _recipe_files() -> dict:
    return {
        entry.name[: -len(".json")]: entry
        for entry in (resources.files("cnnlab") / "recipes").iterdir()
        if entry.name.endswith(".json")
    }


def list_recipes() -> list[str]:
    return sorted(_recipe_files())


def load_recipe(name: str) -> dict:
    """The recipe file `name` as a dict (settings plus description, reference, defaults_for)."""
    files = _recipe_files()
    if name not in files:
        close = difflib.get_close_matches(name, list(files), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"known recipes: {', '.join(sorted(files))}"
        raise CnnlabError(f"unknown recipe '{name}': {hint}")
    recipe = json.loads(files[name].read_text())
    TrainSettings.from_dict({k: v for k, v in recipe.items() if k not in RECIPE_INFO}, f"recipe {name}")
    return recipe


def default_recipe(model: str, dataset: str) -> str | None:
    """The recipe whose "defaults_for" matches `model:dataset` (shell patterns), if any."""
    key = f"{model}:{dataset}"
    for name in list_recipes():
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in load_recipe(name).get("defaults_for", [])):
            return name
    return None


def resolve_settings(model: str, recipe: str | None, overrides: dict) -> tuple[TrainSettings, str | None]:
    """(settings, recipe name): recipe values under the non-None `overrides`, validated.

    Without `recipe`, the data set is the given one (else digits) and the recipe is the default
    for the model on it, if any; a named recipe also brings its own data set."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if recipe is None:  # the default recipe for this model on the chosen (else default) data set
        overrides.setdefault("dataset", TrainSettings.dataset)
        recipe = default_recipe(model, overrides["dataset"])
    values = {}
    if recipe is not None:
        values = {k: v for k, v in load_recipe(recipe).items() if k not in RECIPE_INFO}
    if "max_steps" in overrides and "epochs" not in overrides:
        values["epochs"] = None  # an explicit step budget replaces the recipe's epoch count
    if "epochs" in overrides and "max_steps" not in overrides:
        values["max_steps"] = None
    values.update(overrides)
    return TrainSettings.from_dict(values).validate(), recipe
