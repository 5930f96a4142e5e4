"""Image folders (the ImageNet layout): `<dir>/train/<class>/*` and `<dir>/val/<class>/*`, any image
Pillow reads, streamed through a DataLoader with worker processes and torchvision transforms.

    train: the augmentation specs' pipeline (`cnnlab.data.pipelines`: the papers' resizes, crops, flips
           and colour jitter, torchvision v2)
    val:   the same geometry made deterministic, then the centre crop (or the test-time views of
           `cnnlab.data.tta`); the test set of the run
    then, on the device: to [0, 1], "pca:SIGMA" with ImageNet's RGB eigenvectors, normalise (ImageNet mean/std)

A folder of small images (at most 64 pixels a side) is not resized up and cropped by default: its
images are fitted to the model's input as the in-memory data sets are (`pipelines.DefaultFit`).
Files whose header Pillow cannot read are left out when the folder is scanned (one warning with
the count); an image that fails to decode later is skipped and counted (`loader.skipped`), never fatal.
Order, worker seeds and every image's random transform derive from (seed, epoch, index) only, and
batches are planned exactly as for the in-memory loaders (`cnnlab.data.batching.plan_batches`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets

from cnnlab.data.augment import PcaColour
from cnnlab.data.batching import Loaders, PlannedLoader, epoch_seed, holdout, per_class_subset, plan_batches
from cnnlab.data.info import DATASETS
from cnnlab.data.pipelines import folder_pipeline
from cnnlab.data.preprocess import GREY_WEIGHTS, Adapter
from cnnlab.data.tta import VIEWS, FolderViews
from cnnlab.errors import CnnlabError, warn

# ImageNet RGB covariance (pixels on [0, 1]) as used for AlexNet-style PCA lighting, e.g. fb.resnet.torch
IMAGENET_EIGVALS = np.array([0.2175, 0.0188, 0.0045], np.float32)
IMAGENET_EIGVECS = np.array([[-0.5675, 0.7192, 0.4009],
                             [-0.5808, -0.0045, -0.8140],
                             [-0.5836, -0.6948, 0.4203]], np.float32)  # columns are the eigenvectors


class _Images(Dataset):
    """Items are (index, seed) pairs: the image is transformed under its own seed, so the result
    does not depend on which worker runs it or on the global RNG (which stays untouched)."""

    def __init__(self, samples, transform, grey):
        self.samples, self.transform, self.mode = samples, transform, "L" if grey else "RGB"

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, item):
        index, seed = item
        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                img = img.convert(self.mode)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            return None, path
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(img), label


def _collate(items):
    good = [(x, y) for x, y in items if x is not None]
    skipped = [path for x, path in items if x is None]
    if not good:
        return None, None, skipped
    return torch.stack([x for x, _ in good]), torch.tensor([y for _, y in good]), skipped


class FolderLoader(PlannedLoader):
    """Iterable of (x float32 normalised, y int64) batches on `device`, streamed from image files."""

    def __init__(self, samples, transform, adapter, batch_size, *, shuffle, pca=None, seed=0, rank=0, world_size=1,
                 workers=2, device="cpu"):
        self.dataset = _Images(samples, transform, adapter.target[0] == 1)
        self.adapter, self.pca, self.shuffle, self.seed, self.epoch = adapter, pca, shuffle, seed, 0
        self.workers, self.device = workers, torch.device(device)
        self.plan = plan_batches(len(samples), batch_size, rank, world_size, drop_uneven=shuffle)
        self.skipped: set[str] = set()

    def __iter__(self):
        base = epoch_seed(self.seed, self.epoch)
        cpu = torch.Generator().manual_seed(base)
        order = torch.randperm(len(self.dataset), generator=cpu) if self.shuffle else torch.arange(len(self.dataset))
        order = order.tolist()
        g = torch.Generator(device=self.device).manual_seed(base)
        first = self._start(g)
        plan = self.plan[first:]
        batches = [[(order[start + i], (base + start + i) % 2**63) for i in range(lo, hi)] for start, lo, hi, _ in plan]
        loader = DataLoader(self.dataset, batch_sampler=batches, num_workers=self.workers, collate_fn=_collate,
                            pin_memory=self.device.type == "cuda", generator=cpu)
        for i, ((start, lo, hi, size), (x, y, skipped)) in enumerate(zip(plan, loader), first):
            if skipped and not self.skipped:
                warn(f"{skipped[0]} could not be decoded and is skipped; later ones are counted in silence")
            self.skipped.update(skipped)
            self._done = i + 1
            if x is None:
                continue
            x = self.adapter.to_float(x.to(self.device, non_blocking=True).flatten(0, x.dim() - 4))  # views: B·V
            if self.pca is not None:
                x = self.pca(x, g, lo, size)
            yield self.adapter.normalise(x), y.to(self.device, non_blocking=True)


SHOWN = 3  # unreadable files named in a warning


def _readable(path: str) -> bool:
    """Whether Pillow recognises the file (its header only: cheap, no pixels decoded)."""
    try:
        with Image.open(path):
            return True
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return False


def _scan(folder: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """(classes, [(path, class index)]) of `folder`, as torchvision's ImageFolder indexes it, keeping
    the files whose header Pillow reads. One-line errors for fewer than two classes and for a class
    without a readable image; unreadable files are reported once, as a count with the first names."""
    from concurrent.futures import ThreadPoolExecutor

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if len(classes) < 2:
        found = f"only the class folder {classes[0]}" if classes else "no class folders"
        raise CnnlabError(f"{folder} has {found}: a classifier needs at least two, as {folder}/<class name>/")
    class_to_idx = {c: i for i, c in enumerate(classes)}
    samples = datasets.folder.make_dataset(folder, class_to_idx, datasets.folder.IMG_EXTENSIONS, allow_empty=True)
    with ThreadPoolExecutor(8) as pool:  # opening files is I/O-bound: threads hide the latency
        readable = list(pool.map(_readable, [path for path, _ in samples]))
    unreadable = [path for (path, _), ok in zip(samples, readable) if not ok]
    samples = [sample for sample, ok in zip(samples, readable) if ok]
    counts = np.bincount([y for _, y in samples], minlength=len(classes))
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if empty:
        extensions = ", ".join(sorted(e.lstrip(".") for e in datasets.folder.IMG_EXTENSIONS))
        raise CnnlabError(f"class folder(s) {', '.join(empty)} in {folder} hold no readable image; every class "
                          f"needs at least one ({extensions})")
    if unreadable:
        names = ", ".join(Path(p).name for p in unreadable[:SHOWN]) + (", ..." if len(unreadable) > SHOWN else "")
        warn(f"{folder}: {len(unreadable)} unreadable image file(s) left out ({names})")
    return classes, samples


def class_names(data_dir) -> list[str]:
    """The classes of an image folder (its train/ subfolders), without reading an image."""
    root = Path(data_dir).expanduser() / "train"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def build_imagefolder_loaders(data_dir, input_shape, batch_size, *, augment=(), val_split=0, seed=0, rank=0,
                              world_size=1, eval_batch_size=None, workers=2, device="cpu", train_per_class=None,
                              tta=None) -> Loaders:
    """Loaders of an image folder for a model taking `input_shape`; `tta` (flip, 10crop, 144crop) makes the
    validation and test loaders yield each image's views (batches of B·V, B = eval batch // V)."""
    if data_dir is None:
        raise CnnlabError("imagefolder needs --data-dir: a folder with train/<class>/ and val/<class>/ image folders")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise CnnlabError(f"image folder {root} does not exist")
    for part in ("train", "val"):
        if not (root / part).is_dir():
            raise CnnlabError(f"image folder {root} has no {part}/ folder: lay it out as train/<class>/ and val/<class>/")
    (classes, samples), (val_classes, test_samples) = _scan(root / "train"), _scan(root / "val")
    if classes != val_classes:
        raise CnnlabError(f"{root}: train/ and val/ must hold the same class folders "
                          f"({len(classes)} against {len(val_classes)})")
    c, h, w = input_shape
    if c not in (1, 3):
        raise CnnlabError(f"cannot feed images to a model with {c} input channels (use 1 or 3)")
    info = DATASETS["imagefolder"]
    mean, std = info.mean, info.std
    if c == 1:  # luma of the ImageNet constants (the std is an approximation, weighting the channel variances)
        mean = (float(np.dot(GREY_WEIGHTS, mean)),)
        std = (float(np.sqrt(np.dot(GREY_WEIGHTS, np.square(std)))),)
    adapter = Adapter((c, h, w), (c, h, w), mean, std)
    pipeline = folder_pipeline(augment, (h, w))
    sigma = pipeline.pca
    eval_tf = pipeline.evaluate if tta is None else FolderViews(tta, (h, w), pipeline.eval_geometry)
    if sigma is not None and c != 3:
        raise CnnlabError("augmentation pca needs colour (3-channel) images")
    pca = PcaColour(sigma, IMAGENET_EIGVALS, IMAGENET_EIGVECS) if sigma is not None else None
    labels = np.array([y for _, y in samples])
    train_idx, val_idx = holdout(labels, val_split)
    train_idx = train_idx[per_class_subset(labels[train_idx], train_per_class, seed)]
    common = dict(rank=rank, world_size=world_size, workers=workers, device=device)
    eval_batch = max(1, (eval_batch_size or batch_size) // (VIEWS[tta] if tta else 1))
    train = FolderLoader([samples[i] for i in train_idx], pipeline.train, adapter, batch_size, shuffle=True, pca=pca,
                         seed=seed, **common)
    val = FolderLoader([samples[i] for i in val_idx], eval_tf, adapter, eval_batch, shuffle=False, **common) \
        if len(val_idx) else None
    test = FolderLoader(test_samples, eval_tf, adapter, eval_batch, shuffle=False, **common)
    described = {
        "dataset": "imagefolder",
        "source": str(root.resolve()),
        "data_dir": str(root.resolve()),
        "train_size": len(train_idx),
        "val_size": len(val_idx),
        "test_size": len(test_samples),
        "val_split": "none" if not len(val_idx) else "held out of train/, stratified by class, seed 0",
        "native_shape": None,
        "input_shape": list(input_shape),
        "adapt": [f"{'RGB' if c == 3 else 'grey'}; train: " + "; ".join(pipeline.train_steps),
                  "eval: " + ("; ".join(pipeline.eval_steps) if tta is None else
                              "; ".join(pipeline.eval_steps[:-1]) + f"; {eval_tf}")],
        "augment": [str(s) for s in augment],
        "normalise": "(x / 255 - mean) / std per channel (ImageNet constants)",
        "loader": f"DataLoader with {workers} workers",
        "batch_size_per_process": batch_size,
        "world_size": world_size,
    }
    if train_per_class is not None:
        described["train_subset"] = f"{train_per_class} images per class, seed {seed}"
    return Loaders(train, val, test, classes, adapter.input_mean, adapter.input_std, described)
