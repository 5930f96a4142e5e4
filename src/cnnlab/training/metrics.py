"""Loss and accuracy of the current epoch, accumulated on the device, read by the host only when asked.

Reading a number from a GPU waits for all queued work; doing that every step would stall the
pipeline. `Running` keeps sums as device tensors and `read()` (once per log interval) is the only
synchronisation. Under DDP `read()` sums over ranks, so every rank must call it at the same point.
Its state goes into mid-epoch checkpoints, so a resumed epoch reports what an uninterrupted one would.
"""

from __future__ import annotations

import torch

from cnnlab.inference import top_k_correct
from cnnlab.training import distributed

NEVER = 2**62  # "no non-finite loss seen" as a step number, so the earliest one is a min-reduction


class Running:
    """Sums of loss, top-1 and top-5 hits and images; the first step whose loss was not finite;
    steps taken and training seconds spent in this epoch."""

    def __init__(self, device: torch.device):
        self.sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss*n, top1, top5, n
        self.first_nonfinite = torch.full((), NEVER, dtype=torch.int64, device=device)
        self.steps = torch.zeros((), dtype=torch.int64, device=device)
        self.steps_taken = 0  # the same count on the host, for free
        self.seconds = 0.0

    @torch.no_grad()
    def update(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        n = y.shape[0]
        loss = loss.detach().double()
        batch = torch.stack([loss * n, top_k_correct(logits, y, 1).double(), top_k_correct(logits, y, 5).double(),
                             loss.new_full((), float(n))])  # a fill kernel, not a host copy
        self.sums += batch
        bad = ~torch.isfinite(loss)
        self.first_nonfinite = torch.where(bad, torch.minimum(self.first_nonfinite, self.steps), self.first_nonfinite)
        self.steps += 1
        self.steps_taken += 1

    def read(self) -> dict:
        """{"loss", "top1", "top5", "images", "first_nonfinite" (steps into the epoch, or None)}."""
        sums = distributed.all_reduce(self.sums.clone(), "sum").tolist()
        first = int(distributed.all_reduce(self.first_nonfinite.clone(), "min").item())
        n = max(sums[3], 1.0)
        return {
            "loss": sums[0] / n,
            "top1": sums[1] / n,
            "top5": sums[2] / n,
            "images": int(sums[3]),
            "first_nonfinite": None if first == NEVER else first,
        }

    def state_dict(self) -> dict:
        """Totals over all ranks (a collective: every rank calls it at the same step)."""
        sums = distributed.all_reduce(self.sums.clone(), "sum").cpu()
        first = distributed.all_reduce(self.first_nonfinite.clone(), "min").cpu()
        return {"sums": sums, "first_nonfinite": first, "steps": self.steps_taken, "seconds": self.seconds}

    def load_state_dict(self, state: dict, holds_totals: bool = True) -> None:
        """Continue from saved totals; under DDP one rank (`holds_totals`) carries them, so the
        next `read()`'s sum over ranks is right."""
        device = self.sums.device
        if holds_totals:
            self.sums, self.first_nonfinite = state["sums"].to(device), state["first_nonfinite"].to(device)
        self.steps_taken, self.seconds = state["steps"], state["seconds"]
        self.steps = torch.tensor(self.steps_taken, dtype=torch.int64, device=device)
