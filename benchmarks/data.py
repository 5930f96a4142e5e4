"""Data-layer speed: reading each data set from its official files, and batches/s of the device
loader (adapt + augment + normalise, in batch) against a torchvision-style per-image pipeline.

    python benchmarks/data.py [--data-dir ../shared/data] [--device cpu] [--batches 100] [--threads N]

Prints a Markdown table (the one in docs/data.md). Wall-clock timings; run on an idle machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from cnnlab.data.loaders import build_loaders
from cnnlab.data.readers import load_arrays

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

LOADER_CASES = [  # (data set, model input, augmentations, what it stands for)
    ("mnist", (1, 32, 32), (), "LeNet-5 on MNIST (pad 28 -> 32)"),
    ("mnist", (1, 32, 32), ("crop:2",), "same, with crop:2"),
    ("cifar10", (3, 32, 32), (), "ResNet on CIFAR-10, no augmentation"),
    ("cifar10", (3, 32, 32), ("crop:4", "flip"), "ResNet paper augmentation"),
    ("cifar10", (3, 32, 32), ("crop:4", "flip", "pca:0.1"), "plus AlexNet PCA colour"),
    ("fashion-mnist", (3, 227, 227), ("flip",), "AlexNet on Fashion-MNIST (resize to 227, grey -> RGB)"),
]


def timed(fn, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def batches_per_s(loader, batches: int, device) -> float:
    it = iter(loader)
    next(it)  # warm-up (first-touch of memory, lazy CUDA init)
    start = time.perf_counter()
    for _, (x, _) in zip(range(batches), it):
        pass
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batches / (time.perf_counter() - start)


def torchvision_baseline(images, batches: int, batch_size: int = 128) -> float:
    """The usual alternative: a Dataset with per-image torchvision transforms and a DataLoader (0 workers)."""
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ConvertImageDtype(torch.float32),
                             transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])

    class Images(Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return tf(images[i]), 0

    loader = DataLoader(Images(), batch_size=batch_size, shuffle=True, num_workers=0)
    return batches_per_s(loader, batches, torch.device("cpu"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    print("| data set | read train + test from the official files (s) |")
    print("| --- | ---: |")
    for name in ("digits", "mnist", "fashion-mnist", "cifar10"):
        seconds = timed(lambda: [load_arrays(name, s, args.data_dir) for s in ("train", "test")])  # digits: incl. sklearn import
        print(f"| {name} | {seconds:.2f} |")

    print(f"\n| loader ({device}, batch {args.batch_size}) | model input | augmentation | batches/s | images/s |")
    print("| --- | --- | --- | ---: | ---: |")
    for name, shape, augment, what in LOADER_CASES:
        data = build_loaders(name, shape, args.batch_size, data_dir=args.data_dir, device=device, augment=augment)
        rate = batches_per_s(data.train, args.batches, device)
        shape_text = "x".join(map(str, shape))
        print(f"| {what} | {shape_text} | {' '.join(augment) or '-'} | {rate:.0f} | {rate * args.batch_size:,.0f} |")

    x_train, _, _ = load_arrays("cifar10", "train", args.data_dir)
    rate = torchvision_baseline(torch.from_numpy(x_train), args.batches, args.batch_size)
    print(f"| torchvision per-image RandomCrop+Flip, DataLoader 0 workers (CPU) | 3x32x32 | crop:4 flip | {rate:.0f} | "
          f"{rate * args.batch_size:,.0f} |")


if __name__ == "__main__":
    main()
