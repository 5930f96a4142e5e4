"""One inference pass over a split: loss, top-1/top-5, per-class accuracy, the confusion matrix
and (when asked) each image's top-5 predictions. The trainer's evaluation, `cnnlab eval`, `viz
confusion` and the run's stored predictions all come from here, so they always agree.

Sums stay on the device and are read once at the end (reading a GPU number waits for all queued
work). Under DDP each process evaluates its shard and passes `reduce` (a sum over processes), so
every process gets totals over the whole split.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.run.predictions import Predictions

TOP = 5  # predictions kept per image


def logits_of(output):
    """The main classifier's logits: GoogLeNet returns (logits, aux1, aux2) in train mode."""
    return output[0] if isinstance(output, (tuple, list)) else output


def top_k_correct(logits: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """Number of rows whose label is among the k highest logits (k capped at the class count)."""
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == y[:, None]).any(dim=1).sum()


@dataclass
class Evaluation:
    metrics: dict  # loss, top1, top5, top1_error, top5_error, images, per_class_accuracy, confusion
    predictions: Predictions | None = None  # this process's images, in loader order
    positions: np.ndarray | None = None  # their indices in the split, when the loader knows them


@torch.inference_mode()
def infer(model: torch.nn.Module, loader, num_classes: int, *, autocast=contextlib.nullcontext,
          channels_last: bool = False, keep_predictions: bool = False, reduce=None) -> Evaluation:
    """Evaluate `model` (in eval mode, restored afterwards) over the (x, y) batches of `loader`."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, top1, top5
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    kept = []
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
        if keep_predictions:
            probs, top = torch.softmax(logits, 1).topk(min(TOP, num_classes), dim=1)
            kept.append((y, top, probs))
    model.train(was_training)
    if reduce is not None:
        sums, confusion = reduce(sums, "sum"), reduce(confusion, "sum")
    predictions = positions = None
    if keep_predictions:
        y, top, probs = (torch.cat(parts).cpu().numpy() for parts in zip(*kept)) if kept else \
            (np.zeros(0, np.int64), np.zeros((0, min(TOP, num_classes)), np.int64), np.zeros((0, min(TOP, num_classes)), np.float32))
        predictions = Predictions(y, top, probs)
        positions = loader.positions() if hasattr(loader, "positions") else None
    return Evaluation(_metrics(sums.tolist(), confusion.view(num_classes, num_classes).cpu()), predictions, positions)


def _metrics(sums: list[float], confusion: torch.Tensor) -> dict:
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
