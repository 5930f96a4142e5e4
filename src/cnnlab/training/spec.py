"""What `train()` is asked to do: a small typed specification instead of a long keyword list.

`TrainSpec` says what to train and where; `Start` is how a transfer begins (a prebuilt model, the
optimizer groups by parameter name, the modules kept frozen, where the weights came from). Both are
plain data, so a resumed run rebuilds them from its config.json (`training.resume`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.errors import CnnlabError
from cnnlab.training.settings import TrainSettings

if TYPE_CHECKING:  # torch is imported by the trainer; `cnnlab --help` should not wait for it
    from torch import nn

CHECKPOINT_MINUTES = 10.0  # default: a mid-epoch checkpoint after this much training time


@dataclass
class TrainSpec:
    model: str  # zoo name, written to config.json so the run can be reloaded
    settings: TrainSettings
    recipe: str | None = None
    model_kwargs: dict | None = None  # None: num_classes from the data, in_channels from input_shape
    input_shape: tuple[int, int, int] | None = None  # None: the model card's default
    data_dir: str | None = None
    download: bool = False
    out: str | Path | None = None  # the run directory to create (None: a dated one under runs_root)
    runs_root: str | Path = "runs"
    device: str = "auto"
    quiet: bool = False
    checkpoint_every: int | None = None  # optimizer steps between mid-epoch checkpoints
    checkpoint_minutes: float | None = CHECKPOINT_MINUTES  # training minutes between them
    tensorboard: bool = False  # also write the metrics as TensorBoard scalars (RUN/tensorboard/)
    resume: Path | None = None  # set by `training.resume.resume_spec` only

    # how the run is kept, not what it computes: recorded in config.json, kept by a resumed run
    OPTIONS = ("checkpoint_every", "checkpoint_minutes", "tensorboard")

    def validate(self) -> TrainSpec:
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise CnnlabError(f"--checkpoint-every must be a positive number of steps, not {self.checkpoint_every}")
        if self.checkpoint_minutes is not None and self.checkpoint_minutes < 0:
            raise CnnlabError(f"--checkpoint-minutes must not be negative, not {self.checkpoint_minutes}")
        return self


@dataclass
class Start:
    """A transfer's starting point (see `cnnlab.transfer.finetune`)."""

    model: nn.Module | None  # weights loaded; None on resume (the checkpoint has them)
    groups: list[dict]  # [{"names": [parameter names], "lr_mult": float}]
    frozen: list[str] = field(default_factory=list)  # modules kept fixed and in eval mode
    source: dict | None = None  # config.json's "source": where the weights came from, the plan

    def to_config(self) -> dict:
        return {"groups": self.groups, "frozen": self.frozen}

    @classmethod
    def from_config(cls, config: dict) -> Start | None:
        plan = config.get("plan")
        if not plan:
            return None
        return cls(None, plan["groups"], plan["frozen"], config.get("source"))
