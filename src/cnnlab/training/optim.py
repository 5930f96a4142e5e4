"""Optimizers and learning-rate schedules.

The schedule is one small class rather than torch's scheduler classes because the papers mix
what those keep apart: a warm-up, then a step, multi-step, cosine or one-cycle shape in epochs or
iterations, or "divide by 10 when the validation error stops improving" — and finetuning needs
per-group learning-rate multipliers under all of them. Each step it sets
`group["lr"] = lr * group["lr_mult"] * factor(step) * plateau_scale`; its state is three numbers.
"""

from __future__ import annotations

import math

import torch

from cnnlab.training.settings import TrainSettings


def build_optimizer(param_groups: list[dict], settings: TrainSettings, device: torch.device) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW over `param_groups` (dicts with "params" and an optional
    "lr_mult"); fused kernels on CUDA, foreach elsewhere."""
    groups = []
    for group in param_groups:
        params = [p for p in group["params"] if p.requires_grad]
        if params:
            groups.append({**group, "params": params, "lr_mult": group.get("lr_mult", 1.0)})
    kernels = {"fused": True} if device.type == "cuda" else {"foreach": True}
    if settings.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=settings.lr,
            momentum=settings.momentum,
            nesterov=settings.nesterov and settings.momentum > 0,
            weight_decay=settings.weight_decay,
            **kernels,
        )
    return torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay, **kernels)


class Schedule:
    """The learning rate at every step, and the plateau rule's state."""

    def __init__(self, settings: TrainSettings, steps_per_epoch: int, total_steps: int):
        self.settings = settings
        self.unit = steps_per_epoch if settings.schedule_unit == "epoch" else 1
        self.total_steps = total_steps
        self.warmup_steps = settings.warmup * self.unit
        self.plateau_scale = 1.0
        self.best = math.inf
        self.bad_epochs = 0

    def factor(self, step: int) -> float:
        """Multiplier of the base lr for optimizer step `step` (0-based)."""
        s = self.settings
        position = step / self.unit  # in the schedule's unit
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        if s.schedule == "step":
            return warm * s.gamma ** math.floor(position / s.step_size)
        if s.schedule == "multistep":
            return warm * s.gamma ** sum(position >= m for m in s.milestones)
        if s.schedule == "cosine":
            span = max(1.0, self.total_steps - self.warmup_steps)
            progress = min(1.0, max(0.0, step - self.warmup_steps) / span)
            return warm * 0.5 * (1 + math.cos(math.pi * progress))
        if s.schedule == "onecycle":  # Smith's one-cycle: up from lr/25, then cosine down to lr/25e4
            rise = self.warmup_steps or 0.3 * self.total_steps
            if step < rise:
                return 1 / 25 + (1 - 1 / 25) * step / rise
            progress = min(1.0, (step - rise) / max(1.0, self.total_steps - rise))
            return 1 / 25e4 + (1 - 1 / 25e4) * 0.5 * (1 + math.cos(math.pi * progress))
        return warm * self.plateau_scale  # constant and plateau

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's lr for `step`; returns the base lr (group multiplier 1)."""
        lr = self.settings.lr * self.factor(step)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        return lr

    def end_epoch(self, metric: float) -> None:
        """Plateau rule (lower `metric` is better): lr *= gamma after `patience` epochs without a
        relative improvement of 1e-4, as torch's ReduceLROnPlateau does by default."""
        if self.settings.schedule != "plateau":
            return
        threshold = self.best * (1 - 1e-4) if self.best > 0 else self.best
        if metric < threshold:
            self.best, self.bad_epochs = metric, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.settings.patience:
                self.plateau_scale *= self.settings.gamma
                self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"plateau_scale": self.plateau_scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_scale, self.best, self.bad_epochs = state["plateau_scale"], state["best"], state["bad_epochs"]
