"""Loaders for training: the in-memory data sets live on the training device as uint8 tensors and
every batch is sliced by index, adapted and augmented there (no DataLoader, no per-image Python).
Order, randomness and sharding follow `cnnlab.data.batching`.
"""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.data.augment import parse_augment
from cnnlab.data.batching import (
    VAL_SPLIT_SEED,
    Loaders,
    PlannedLoader,
    epoch_seed,
    holdout,
    per_class_subset,
    plan_batches,
)
from cnnlab.data.info import IN_MEMORY, dataset_info
from cnnlab.data.preprocess import Adapter, grey_stats
from cnnlab.data.readers import default_data_dir, load_arrays
from cnnlab.data.tta import BatchViews, crop_padding
from cnnlab.errors import CnnlabError


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
        first = self._start(g)
        for i, (start, lo, hi, size) in enumerate(self.plan[first:], first):
            if order is None:
                x, y = self.images[start + lo:start + hi], self.labels[start + lo:start + hi]
            else:
                index = order[start + lo:start + hi]
                x, y = self.images[index], self.labels[index]
            x = self.adapter.to_float(x)
            for augmentation in self.augment:
                x = augmentation(x, g, lo, size)
            self._done = i + 1
            yield self.adapter.normalise(x), y

    def positions(self) -> np.ndarray:
        """Indices into the split of the images this rank yields, in order (unshuffled loaders)."""
        return np.concatenate([np.arange(start + lo, start + hi) for start, lo, hi, _ in self.plan] or [np.zeros(0, int)])


def _check_positive(**values):
    for name, value in values.items():
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise CnnlabError(f"{name.replace('_', ' ')} must be a positive whole number, not {value!r}")


def build_loaders(name, input_shape, batch_size, *, data_dir=None, download=False, device="cpu", augment=(),
                  val_split=0, seed=0, rank=0, world_size=1, eval_batch_size=None, workers=2,
                  train_per_class=None, tta=None, tta_pad=None) -> Loaders:
    """Train / validation / test loaders of data set `name` for a model taking `input_shape` (C, H, W).

    `train_per_class` keeps that many training images per class (few-shot), chosen with `seed`
    after the validation hold-out. The description records where the files were found
    (`data_dir`), so commands that read the run later find them again.
    `tta` (flip, 10crop, 144crop; `cnnlab.data.tta`) makes the validation and test loaders yield every
    image's views one after the other, at most the evaluation batch size of views per batch. For the
    in-memory sets, 10 crops come from the image zero-padded by `tta_pad` (default: the `crop:P` of
    `augment`); evaluating a run, pass its P without its augmentations."""
    _check_positive(batch_size=batch_size, eval_batch_size=eval_batch_size, world_size=world_size)
    if not 0 <= rank < world_size:
        raise CnnlabError(f"rank {rank} is not in 0..{world_size - 1}")
    info = dataset_info(name)
    if name not in IN_MEMORY:
        from cnnlab.data.imagefolder import build_imagefolder_loaders

        return build_imagefolder_loaders(data_dir, input_shape, batch_size, augment=augment, val_split=val_split,
                                         seed=seed, rank=rank, world_size=world_size,
                                         eval_batch_size=eval_batch_size, workers=workers, device=device,
                                         train_per_class=train_per_class, tta=tta)
    x_train, y_train, classes = load_arrays(name, "train", data_dir, download)
    x_test, y_test, _ = load_arrays(name, "test", data_dir)
    train_idx, val_idx = holdout(y_train, val_split)
    train_idx = train_idx[per_class_subset(y_train[train_idx], train_per_class, seed)]
    mean, std = info.mean, info.std
    if (info.shape[0], input_shape[0]) == (3, 1):
        mean, std = grey_stats(x_train[train_idx])
    adapter = Adapter(x_train.shape[1:], input_shape, mean, std)
    augs = parse_augment(augment, adapter.channels, x_train[train_idx])

    device = torch.device(device)
    on_device = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    views = [BatchViews(tta, crop_padding(augment) if tta_pad is None else tta_pad)] if tta else []
    eval_batch = max(1, (eval_batch_size or batch_size) // (views[0].views if views else 1))
    train = DeviceLoader(on_device(x_train[train_idx]), on_device(y_train[train_idx]), batch_size, adapter, augs,
                         shuffle=True, seed=seed, rank=rank, world_size=world_size)
    shard = dict(rank=rank, world_size=world_size)  # evaluation: each rank its part, summed by the caller
    val = DeviceLoader(on_device(x_train[val_idx]), on_device(y_train[val_idx]), eval_batch, adapter, views,
                       shuffle=False, **shard) if len(val_idx) else None
    test = DeviceLoader(on_device(x_test), on_device(y_test), eval_batch, adapter, views, shuffle=False, **shard)
    described = {
        "dataset": name,
        "source": info.source,
        "data_dir": None if name == "digits" else str(default_data_dir(data_dir).resolve()),
        "train_size": len(train_idx),
        "val_size": len(val_idx),
        "test_size": len(y_test),
        "val_split": "none" if not len(val_idx) else f"held out of the training set, stratified by class, seed {VAL_SPLIT_SEED}",
        "native_shape": list(x_train.shape[1:]),
        "input_shape": list(input_shape),
        "adapt": adapter.steps,
        "augment": [str(a) for a in augs],
        **({"test_views": str(views[0])} if views else {}),
        "normalise": "(x / 255 - mean) / std per channel",
        "loader": "in-memory uint8 on " + str(device),
        "batch_size_per_process": batch_size,
        "world_size": world_size,
    }
    if train_per_class is not None:
        described["train_subset"] = f"{train_per_class} images per class, seed {seed}"
    if name == "digits":
        described["split"] = "scikit-learn digits, stratified train/test split, seed 0"
    return Loaders(train, val, test, classes, adapter.input_mean, adapter.input_std, described)
