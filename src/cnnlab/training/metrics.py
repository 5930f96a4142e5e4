"""Loss and accuracy accumulated on the device, read by the host only when asked.

Reading a number from a GPU waits for all queued work; doing that every step would stall the
pipeline. `Running` keeps sums as device tensors and `read()` (once per log interval) is the only
synchronisation. Under DDP `read()` sums over ranks, so every rank must call it at the same point.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.training import distributed

NEVER = 2**62  # "no non-finite loss seen" as a step number, so the earliest one is a min-reduction


def top_k_correct(logits: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """Number of rows whose label is among the k highest logits (k capped at the class count)."""
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == y[:, None]).any(dim=1).sum()


class Running:
    """Sums of loss, top-1 and top-5 hits and images; the first step whose loss was not finite."""

    def __init__(self, device: torch.device):
        self.sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss*n, top1, top5, n
        self.first_nonfinite = torch.full((), NEVER, dtype=torch.int64, device=device)
        self.steps = torch.zeros((), dtype=torch.int64, device=device)

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

    def read(self) -> dict:
        """{"loss", "top1", "top5", "images", "first_nonfinite" (steps into this Running, or None)}."""
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


def logits_of(output):
    """The main classifier's logits: GoogLeNet returns (logits, aux1, aux2) in train mode."""
    return output[0] if isinstance(output, (tuple, list)) else output


@torch.inference_mode()
def evaluate(model: torch.nn.Module, loader, num_classes: int, autocast, channels_last: bool = False) -> dict:
    """Loss (plain cross-entropy), top-1/top-5 accuracy and error, per-class accuracy and the
    confusion matrix (rows: true class, columns: predicted) of `model` over `loader`.

    Under DDP each rank evaluates its shard and the sums are reduced, so all ranks get the totals.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, top1, top5
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    for x, y in loader:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast():
            logits = logits_of(model(x))
        logits = logits.float()
        sums += torch.stack([F.cross_entropy(logits, y, reduction="sum").double(),
                             top_k_correct(logits, y, 1).double(), top_k_correct(logits, y, 5).double()])
        cells = y * num_classes + logits.argmax(1)
        confusion.scatter_add_(0, cells, torch.ones_like(cells))  # bincount would sync on CUDA to size itself
    model.train(was_training)
    sums = distributed.all_reduce(sums, "sum").tolist()
    confusion = distributed.all_reduce(confusion, "sum").view(num_classes, num_classes).cpu()
    n = int(confusion.sum())
    per_class_total = confusion.sum(1)
    per_class = (confusion.diag().double() / per_class_total.clamp(min=1)).tolist()
    top1, top5 = sums[1] / max(n, 1), sums[2] / max(n, 1)
    return {
        "loss": sums[0] / max(n, 1),
        "top1": top1,
        "top5": top5,
        "top1_error": 1 - top1,
        "top5_error": 1 - top5,
        "images": n,
        "per_class_accuracy": [acc if total else None for acc, total in zip(per_class, per_class_total.tolist())],
        "confusion": confusion.tolist(),
    }
