"""cnnlab's trainer against a plain PyTorch loop on the CPU, same model, batch, optimizer, threads.

    python benchmarks/train_cpu_vs_plain.py [--data-dir ../shared/data] [--threads 2] [--steps 200]
        [--only lenet5 resnet20] [--workers 0 2]

The plain loop is what a PyTorch user writes first: a torchvision-style `Dataset` (one PIL image
per item through torchvision transforms: MNIST padded to 32x32, CIFAR-10 with 4-pixel crops and
flips) and a `DataLoader` (each of --workers; the faster is the reference), the same model from the
zoo, the same optimizer (LeNet-5: AdamW 2e-3; ResNet-20: SGD 0.1, momentum 0.9, wd 1e-4), batch 128,
`torch.set_num_threads(--threads)`. cnnlab's side is `cnnlab.train` with `--max-steps` in this
process (its device-resident loader, augmentation on the batch). Both are timed over the same
number of optimizer steps after a few warm-up steps; evaluation is not timed. Prints a Markdown
table of images/s and the ratio cnnlab / plain (target >= 1.0).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WARMUP = 5  # steps before the clock starts, on both sides
CASES = {  # model: (data set, optimizer settings, augmentation of cnnlab's loader)
    "lenet5": ("mnist", {"optimizer": "adamw", "lr": 0.002, "weight_decay": 0.01}, []),
    "resnet20": ("cifar10", {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
                 ["flip", "crop:4"]),
}


class Images(torch.utils.data.Dataset):
    """torchvision's MNIST/CIFAR10 in miniature: a PIL image and a transform per item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
        self.labels, self.transform = labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def plain_loop(model_name: str, data_dir: Path, batch: int, steps: int, workers: int) -> float:
    """Images/s of the plain loop over `steps` steps."""
    import torchvision.transforms as T

    import cnnlab
    from cnnlab.data.info import dataset_info
    from cnnlab.data.readers import load_arrays

    dataset, optim, _ = CASES[model_name]
    info = dataset_info(dataset)
    x, y, _ = load_arrays(dataset, "train", data_dir)
    if dataset == "mnist":
        transform = T.Compose([T.Pad(2), T.ToTensor(), T.Normalize(info.mean, info.std)])
    else:
        transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                               T.Normalize(info.mean, info.std)])
    loader = torch.utils.data.DataLoader(Images(x, y, transform), batch, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0, drop_last=True)
    torch.manual_seed(0)
    model = cnnlab.create(model_name, num_classes=10, guard=False).train()
    if optim["optimizer"] == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=optim["lr"], weight_decay=optim["weight_decay"])
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=optim["lr"], momentum=optim["momentum"],
                                    weight_decay=optim["weight_decay"])
    done, started = 0, None
    while done < steps + WARMUP:
        for images, labels in loader:
            if done == WARMUP:
                started = time.perf_counter()
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps + WARMUP:
                break
    return steps * batch / (time.perf_counter() - started)


def cnnlab_trainer(model_name: str, data_dir: Path, batch: int, steps: int, threads: int) -> float:
    """Images/s of `cnnlab.train` over its first `steps + WARMUP` steps (the warm-up steps are in
    its own clock too, which is why it runs them: their share is small and counted against it)."""
    from cnnlab.training.settings import TrainSettings
    from cnnlab.training.spec import TrainSpec
    from cnnlab.training.trainer import train

    dataset, optim, augment = CASES[model_name]
    settings = TrainSettings(dataset=dataset, max_steps=steps + WARMUP, epochs=None, batch_size=batch,
                             augment=augment, threads=threads, log_interval=steps + WARMUP, **optim)
    with tempfile.TemporaryDirectory() as tmp:
        spec = TrainSpec(model_name, settings, out=Path(tmp) / "run", data_dir=str(data_dir), device="cpu",
                         quiet=True, checkpoint_minutes=None)
        result = train(spec)
    return [r for r in result.history if r["split"] == "train"][-1]["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=SHARED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--only", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
          f"batch {args.batch_size}, {args.steps} timed steps\n")
    print("| model | data | cnnlab img/s | plain img/s (workers) | ratio |\n| --- | --- | ---: | ---: | ---: |")
    for name in args.only:
        ours = cnnlab_trainer(name, args.data_dir, args.batch_size, args.steps, args.threads)
        torch.set_num_threads(args.threads)
        plain = {w: plain_loop(name, args.data_dir, args.batch_size, args.steps, w) for w in args.workers}
        best = max(plain, key=plain.get)
        shown = ", ".join(f"{v:,.0f} ({w})" for w, v in plain.items())
        print(f"| {name} | {CASES[name][0]} | {ours:,.0f} | {shown} | {ours / plain[best]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
