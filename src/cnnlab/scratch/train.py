"""The training loop of the NumPy engine: a step is forward, loss, backward, update."""

from __future__ import annotations

import math
import time

import numpy as np

from cnnlab.scratch.data import batches
from cnnlab.scratch.layers import Layer
from cnnlab.scratch.losses import softmax_cross_entropy
from cnnlab.scratch.optim import Optimizer


def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """Learning rate for `epoch` (1-based): half a cosine from base_lr down towards 0, so the last
    epochs take small, careful steps."""
    return base_lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))


def train_step(model: Layer, optimizer: Optimizer, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """One optimiser step on a batch; returns (loss, logits) as seen before the update."""
    logits = model(x)
    loss, dlogits = softmax_cross_entropy(logits, y)
    model.backward(dlogits)
    optimizer.step()
    return loss, logits


def train_epoch(model, optimizer, x, y, batch_size, rng, on_step=None) -> dict:
    """One pass over (x, y) in shuffled batches; `on_step(seen, loss_sum, correct)` after each step.
    Returns the epoch's mean loss, top-1 accuracy, images/s and seconds."""
    model.train()
    start, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
    for index in batches(len(x), batch_size, rng):
        loss, logits = train_step(model, optimizer, x[index], y[index])
        seen += len(index)
        loss_sum += loss * len(index)
        correct += int((logits.argmax(axis=1) == y[index]).sum())
        if on_step:
            on_step(seen, loss_sum, correct)
    seconds = time.perf_counter() - start
    return {"loss": loss_sum / seen, "top1": correct / seen, "images_per_s": seen / seconds, "seconds": seconds}


def evaluate(model: Layer, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> dict:
    """Mean loss and top-1 accuracy in evaluation mode."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for index in batches(len(x), batch_size):
        logits = model(x[index])
        loss_sum += softmax_cross_entropy(logits, y[index])[0] * len(index)
        correct += int((logits.argmax(axis=1) == y[index]).sum())
    return {"loss": loss_sum / len(x), "top1": correct / len(x)}
