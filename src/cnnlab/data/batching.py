"""Batch plans, epochs, positions and hold-out splits: what every loader shares (in-memory and image
folders).

Order and randomness. Each epoch draws everything from one generator seeded by (seed, epoch) only:
first the permutation of the training set, then each batch's augmentation. So `set_epoch(e)` alone
fixes what an epoch yields, and a run resumed at an epoch boundary repeats it bit for bit.

Distributed (see `plan_batches`). With world_size W every rank draws the same global permutation
and cuts it into global batches of batch_size x W; rank r takes the contiguous slice
[r*batch_size, (r+1)*batch_size) of each. The W ranks together therefore see exactly the batches
one process sees with batch_size x W, augmented identically (random numbers are drawn for the
global batch and sliced). The last, short global batch of m images is cut into W equal contiguous
parts of m // W images (the m mod W images at its end are left out of that epoch), so every step's
gradient average over ranks is the mean over one global batch. One process (W = 1) keeps all m,
so for a bit-for-bit comparison with one process choose sizes where m is a multiple of W.
Validation and test loaders shard the same way but never leave an image out (the last batch is
split into parts that differ by at most one, empty parts skipped), so the evaluation's sums
reduced over ranks are exact totals over the whole set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from cnnlab.data.splits import can_stratify, shuffled_split, stratified_split
from cnnlab.errors import CnnlabError

VAL_SPLIT_SEED = 0  # the held-out validation images do not change with the training seed


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed determined by (seed, epoch) only."""
    return int(np.random.SeedSequence([seed, epoch, 0xC1A5]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def plan_batches(n: int, batch_size: int, rank: int = 0, world_size: int = 1, drop_uneven: bool = True):
    """[(start, lo, hi, size)] for one rank: global batch [start, start+size) of the epoch's order,
    of which this rank takes positions [lo, hi). See the module docstring for the rule; without
    `drop_uneven` the last batch is split into parts that differ by at most one image instead."""
    global_batch = batch_size * world_size
    plan = []
    for start in range(0, n, global_batch):
        size = min(global_batch, n - start)
        if size == global_batch:
            lo, hi = rank * batch_size, (rank + 1) * batch_size
        elif drop_uneven:  # equal shards, so the DDP gradient average is the mean over the global batch
            share = size // world_size
            lo, hi = rank * share, (rank + 1) * share
        else:
            share, extra = divmod(size, world_size)
            lo = rank * share + min(rank, extra)
            hi = lo + share + (rank < extra)
        if hi > lo:
            plan.append((start, lo, hi, size))
    return plan


class PlannedLoader:
    """What every loader shares: a batch plan for this rank (`plan_batches`), the epoch that, with
    the seed, decides the order and the augmentation, and the position inside the epoch.

    The position (batches yielded, and the state of the epoch's generator after them) is what a
    mid-epoch checkpoint stores; `set_epoch(e, position)` continues from it exactly as if the
    epoch had never been interrupted."""

    plan: list
    epoch: int = 0
    _resume: dict | None = None
    _generator: torch.Generator | None = None
    _done: int = 0

    @property
    def num_samples(self) -> int:
        """Images this rank sees per epoch."""
        return sum(hi - lo for _, lo, hi, _ in self.plan)

    def set_epoch(self, epoch: int, position: dict | None = None) -> None:
        self.epoch, self._resume = int(epoch), position

    def position(self) -> dict:
        """Where the current epoch's iteration stands (call it between batches)."""
        state = self._generator.get_state() if self._generator is not None else torch.zeros(0, dtype=torch.uint8)
        return {"batch": self._done, "generator": state}

    def _start(self, generator: torch.Generator) -> int:
        """At the start of an epoch's iteration: the first batch to yield, with `generator` moved
        to where it stood before that batch."""
        self._generator, resume, self._resume = generator, self._resume, None
        self._done = 0
        if resume and resume["batch"]:
            generator.set_state(resume["generator"])
            self._done = resume["batch"]
        return self._done

    def __len__(self) -> int:
        return len(self.plan)


@dataclass
class Loaders:
    """What `build_loaders` returns: the three loaders and what the run must record about its data."""

    train: object
    val: object | None
    test: object
    classes: list[str]
    mean: tuple[float, ...]  # per model-input channel, as applied
    std: tuple[float, ...]
    info: dict = field(default_factory=dict)

    def describe(self) -> dict:
        """For config.json: data set, sizes, how images were fitted to the model, normalisation, augmentation."""
        return dict(self.info, mean=list(self.mean), std=list(self.std), classes=list(self.classes))


def holdout(labels: np.ndarray, val_split) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): a hold-out of `val_split` images (a count, or a fraction
    in (0, 1)) chosen with a fixed seed, stratified by class whenever every class can give one;
    both sorted, so the file order is kept."""
    n = len(labels)
    if not val_split:
        return np.arange(n), np.arange(0)
    if 0 < val_split < 1:
        count = round(val_split * n)
        if not 0 < count < n:
            raise CnnlabError(f"--val-split {val_split} holds out {val_split} x {n:,} = {count} images: give a "
                              f"fraction that holds out 1..{n - 1:,} images, or a count")
    elif not float(val_split).is_integer() or not 0 < val_split < n:
        raise CnnlabError(f"--val-split {val_split} must be a whole count of images in 1..{n - 1:,} or a fraction in (0, 1)")
    count = round(val_split * n) if val_split < 1 else int(val_split)
    if can_stratify(labels, count):
        train, val = stratified_split(labels, count, VAL_SPLIT_SEED)
    else:  # fewer held-out images than classes, or a class with a single image
        train, val = shuffled_split(n, count, VAL_SPLIT_SEED)
    return np.sort(train), np.sort(val)


def per_class_subset(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Indices of `per_class` images of every class (few-shot training), chosen with `seed` and
    sorted, so the file order is kept; all indices when `per_class` is None."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise CnnlabError(f"class {c} has only {len(members)} training images, fewer than --train-per-class {per_class}")
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(chosen))

