"""Loaders for training: the in-memory data sets live on the training device as uint8 tensors and
every batch is sliced by index, adapted and augmented there (no DataLoader, no per-image Python).

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
reduced over ranks (`cnnlab.training.metrics.evaluate`) are exact totals over the whole set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from cnnlab.data.augment import parse_augment
from cnnlab.data.info import IN_MEMORY, dataset_info
from cnnlab.data.preprocess import Adapter, grey_stats
from cnnlab.data.readers import load_arrays
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
    """What every loader shares: a batch plan for this rank (`plan_batches`) and the epoch that,
    with the seed, decides the order and the augmentation."""

    plan: list
    epoch: int = 0

    @property
    def num_samples(self) -> int:
        """Images this rank sees per epoch."""
        return sum(hi - lo for _, lo, hi, _ in self.plan)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.plan)


class DeviceLoader(PlannedLoader):
    """Iterable of (x float32 normalised, y int64) batches, both on the data's device."""

    def __init__(self, images, labels, batch_size, adapter, augment=(), *, shuffle, seed=0, rank=0, world_size=1):
        self.images, self.labels = images, labels
        self.batch_size, self.adapter, self.augment = batch_size, adapter, list(augment)
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.plan = plan_batches(len(labels), batch_size, rank, world_size, drop_uneven=shuffle)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __iter__(self):
        g = torch.Generator(device=self.device)
        g.manual_seed(epoch_seed(self.seed, self.epoch))
        n = len(self.labels)
        order = torch.randperm(n, generator=g, device=self.device) if self.shuffle else None
        for start, lo, hi, size in self.plan:
            if order is None:
                x, y = self.images[start + lo:start + hi], self.labels[start + lo:start + hi]
            else:
                index = order[start + lo:start + hi]
                x, y = self.images[index], self.labels[index]
            x = self.adapter.to_float(x)
            for augmentation in self.augment:
                x = augmentation(x, g, lo, size)
            yield self.adapter.normalise(x), y


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
    count = round(val_split * n) if 0 < val_split < 1 else val_split
    if not float(count).is_integer() or not 0 < count < n:
        raise CnnlabError(f"validation split {val_split} must be a count in 1..{n - 1} or a fraction in (0, 1)")
    from sklearn.model_selection import train_test_split

    index = np.arange(n)
    try:
        train, val = train_test_split(index, test_size=int(count), stratify=labels, random_state=VAL_SPLIT_SEED)
    except ValueError:  # fewer held-out images than classes, or a class with a single image
        train, val = train_test_split(index, test_size=int(count), random_state=VAL_SPLIT_SEED)
    return np.sort(train), np.sort(val)


def _check_positive(**values):
    for name, value in values.items():
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise CnnlabError(f"{name.replace('_', ' ')} must be a positive whole number, not {value!r}")


def build_loaders(name, input_shape, batch_size, *, data_dir=None, download=False, device="cpu", augment=(),
                  val_split=0, seed=0, rank=0, world_size=1, eval_batch_size=None, workers=2) -> Loaders:
    """Train / validation / test loaders of data set `name` for a model taking `input_shape` (C, H, W)."""
    _check_positive(batch_size=batch_size, eval_batch_size=eval_batch_size, world_size=world_size)
    if not 0 <= rank < world_size:
        raise CnnlabError(f"rank {rank} is not in 0..{world_size - 1}")
    info = dataset_info(name)
    if name not in IN_MEMORY:
        from cnnlab.data.imagefolder import build_imagefolder_loaders

        return build_imagefolder_loaders(data_dir, input_shape, batch_size, augment=augment, val_split=val_split,
                                         seed=seed, rank=rank, world_size=world_size,
                                         eval_batch_size=eval_batch_size, workers=workers, device=device)
    x_train, y_train, classes = load_arrays(name, "train", data_dir, download)
    x_test, y_test, _ = load_arrays(name, "test", data_dir)
    train_idx, val_idx = holdout(y_train, val_split)
    mean, std = info.mean, info.std
    if (info.shape[0], input_shape[0]) == (3, 1):
        mean, std = grey_stats(x_train[train_idx])
    adapter = Adapter(x_train.shape[1:], input_shape, mean, std)
    augs = parse_augment(augment, adapter.channels, x_train[train_idx])

    device = torch.device(device)
    on_device = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    eval_batch = eval_batch_size or batch_size
    train = DeviceLoader(on_device(x_train[train_idx]), on_device(y_train[train_idx]), batch_size, adapter, augs,
                         shuffle=True, seed=seed, rank=rank, world_size=world_size)
    shard = dict(rank=rank, world_size=world_size)  # evaluation: each rank its part, summed by the caller
    val = DeviceLoader(on_device(x_train[val_idx]), on_device(y_train[val_idx]), eval_batch, adapter,
                       shuffle=False, **shard) if len(val_idx) else None
    test = DeviceLoader(on_device(x_test), on_device(y_test), eval_batch, adapter, shuffle=False, **shard)
    described = {
        "dataset": name,
        "source": info.source,
        "train_size": len(train_idx),
        "val_size": len(val_idx),
        "test_size": len(y_test),
        "val_split": "none" if not len(val_idx) else f"held out of the training set, stratified by class, seed {VAL_SPLIT_SEED}",
        "native_shape": list(x_train.shape[1:]),
        "input_shape": list(input_shape),
        "adapt": adapter.steps,
        "augment": [str(a) for a in augs],
        "normalise": "(x / 255 - mean) / std per channel",
        "loader": "in-memory uint8 on " + str(device),
        "batch_size_per_process": batch_size,
        "world_size": world_size,
    }
    if name == "digits":
        described["split"] = "scikit-learn digits, stratified train/test split, seed 0"
    return Loaders(train, val, test, classes, adapter.input_mean, adapter.input_std, described)
