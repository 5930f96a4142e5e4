"""Transfer learning on real data: does a pretrained network beat training from scratch when only a
handful of labelled images exist?

Each experiment pretrains a source network, then learns a small target task three ways on the same
few labelled images with the same optimiser, learning rate, epochs and seed: from scratch, as a
frozen feature extractor (`--mode features`), and fine-tuned (`--mode finetune`, backbone lr x 0.1).
Reported: the last epoch's test accuracy (nothing is selected on the test set), mean and sample
standard deviation over the seeds; the seed picks the labelled images, the initialisation and the
batch order.

A. LeNet-5 pretrained on MNIST (the shared IDX files) -> `digits` (scikit-learn's 8x8 digits) with
   10 labelled images per class, tested on digits' 360-image test split, three ways:
   - "MNIST geometry": each 8x8 digit resized to a 20x20 box and centred in 28x28, then padded to
     32x32 and normalised with MNIST's constants -- MNIST's own preprocessing, so the images reach
     the network at the scale the source was trained on; SGD lr 0.01 and 0.05;
   - cnnlab's default for digits (8x8 upscaled to the whole 32x32 frame, digits' own constants),
     lr 0.01: the same digits at about 1.6x the scale the source learned.
B. ResNet-20 pretrained on a class-balanced subset of the CIFAR-10 training set (short, on CPU) ->
   an image folder of two classes (airplane vs ship) written as PNGs from the exact CIFAR-10 test
   images: 20 training images per class, the next 100 per class for testing. The source saw other
   images of these classes (its training set), never these ones.

    python benchmarks/transfer.py --data-dir ../shared/data --out runs/bench-transfer

A source run that already exists in --out is reused. Results: a Markdown table on stdout and
<out>/results.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cnnlab.data.loaders import DeviceLoader, Loaders
from cnnlab.data.preprocess import Adapter
from cnnlab.data.readers import load_arrays, read_cifar_bin
from cnnlab.data.batching import per_class_subset
from cnnlab.run import CONFIG, read_metrics
from cnnlab.training import distributed
from cnnlab.training.settings import TrainSettings
from cnnlab.training.spec import TrainSpec
from cnnlab.training.trainer import build_data, train
from cnnlab.transfer.finetune import finetune

METHODS = ("scratch", "features", "finetune")
TARGET_CLASSES = ("airplane", "ship")
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)


def final_top1(history, split: str = "test") -> float:
    return [r for r in history if r["split"] == split][-1]["top1"]


def pretrain(out: Path, model: str, settings: TrainSettings, data_dir, train_per_class: int, test_per_class: int) -> Path:
    """The source run, on class-balanced subsets of the training and test sets (reused when it exists)."""
    if (out / CONFIG).is_file() and (out / "checkpoints").is_dir():
        return out
    place = distributed.setup("cpu")
    shape = {"lenet5": (1, 32, 32), "resnet20": (3, 32, 32)}[model]
    data = build_data(settings.replace(train_per_class=train_per_class), shape, place, data_dir, False)
    test = data.test
    index = test.labels.new_tensor(per_class_subset(test.labels.numpy(), test_per_class, settings.seed))
    data.test = DeviceLoader(test.images[index], test.labels[index], test.batch_size, test.adapter, shuffle=False)
    train(TrainSpec(model, settings, out=out, device="cpu", input_shape=shape, quiet=True), data=data)
    return out


def standard_data(shape, data_dir, per_class):
    """Loaders as `cnnlab finetune` builds them (optionally few-shot), for a settings' seed."""

    def make(settings):
        place = distributed.setup("cpu")
        return build_data(settings.replace(train_per_class=per_class or None), shape, place, data_dir, False)

    return make


def mnist_geometry(images: np.ndarray) -> torch.Tensor:
    """uint8 N x 1 x 8 x 8 digits -> N x 1 x 28 x 28: a 20 x 20 box centred in 28 x 28, as MNIST's digits."""
    x = F.interpolate(torch.from_numpy(np.ascontiguousarray(images)).float(), size=(20, 20), mode="bilinear",
                      antialias=True, align_corners=False)
    return F.pad(x, (4, 4, 4, 4)).round().clamp(0, 255).to(torch.uint8)


def digits_like_mnist(per_class: int):
    def make(settings):
        x_train, y_train, classes = load_arrays("digits", "train")
        x_test, y_test, _ = load_arrays("digits", "test")
        index = per_class_subset(y_train, per_class, settings.seed)
        adapter = Adapter((1, 28, 28), (1, 32, 32), MNIST_MEAN, MNIST_STD)  # then padded 28 -> 32 as MNIST
        train_loader = DeviceLoader(mnist_geometry(x_train[index]), torch.from_numpy(y_train[index]),
                                    settings.batch_size, adapter, shuffle=True, seed=settings.seed)
        test_loader = DeviceLoader(mnist_geometry(x_test), torch.from_numpy(y_test), 4 * settings.batch_size, adapter,
                                   shuffle=False, seed=settings.seed)
        info = {"dataset": "digits", "train_size": len(index), "test_size": len(y_test),
                "adapt": ["resize 8x8 -> 20x20 (bilinear, antialias), centred in 28x28", *adapter.steps],
                "train_subset": f"{per_class} images per class, seed {settings.seed}"}
        return Loaders(train_loader, None, test_loader, list(classes), adapter.input_mean, adapter.input_std, info)

    return make


def few_shot_runs(out: Path, source: Path, model: str, settings: TrainSettings, make_data, seeds) -> dict:
    """Last-epoch test (and train) accuracy of scratch / features / finetune for every seed."""
    shape = json.loads((source / CONFIG).read_text())["input_shape"]
    test, fitted = {m: [] for m in METHODS}, {m: [] for m in METHODS}
    for seed in seeds:
        s = settings.replace(seed=seed)
        def spec(name, s=s):
            return TrainSpec(model, s, out=out / name, device="cpu", quiet=True, input_shape=shape)

        runs = {"scratch": lambda: train(spec(f"scratch-{seed}"), data=make_data(s))}
        for mode in ("features", "finetune"):
            runs[mode] = lambda mode=mode: finetune(str(source), spec(f"{mode}-{seed}"), mode=mode, data=make_data(s))
        for method, run in runs.items():
            started = time.perf_counter()
            history = run().history
            test[method].append(final_top1(history))
            fitted[method].append(final_top1(history, "train"))
            print(f"  seed {seed} {method:9} test top-1 {100 * test[method][-1]:6.2f}%  (last-epoch train "
                  f"{100 * fitted[method][-1]:.0f}%, {time.perf_counter() - started:.0f} s)", flush=True)
    return {"test_top1": test, "train_top1_last_epoch": fitted, "settings": settings.to_dict()}


def write_cifar_folder(root: Path, data_dir: Path, train_per_class: int, test_per_class: int) -> Path:
    """PNG folders train/<class>, val/<class> from the exact (lossless) CIFAR-10 test images."""
    folder = data_dir / "cifar10" / "cifar-10-batches-bin"
    classes = [line for line in (folder / "batches.meta.txt").read_text().splitlines() if line]
    images, labels = read_cifar_bin(folder / "test_batch.bin")
    for name in TARGET_CLASSES:
        members = np.flatnonzero(labels == classes.index(name))  # in file order
        for part, chosen in (("train", members[:train_per_class]),
                             ("val", members[train_per_class:train_per_class + test_per_class])):
            (root / part / name).mkdir(parents=True, exist_ok=True)
            for index in chosen:
                Image.fromarray(images[index].transpose(1, 2, 0)).save(root / part / name / f"test-{index:05d}.png")
    return root


def row(label: str, result: dict) -> str:
    cells = []
    for method in METHODS:
        values = [100 * v for v in result["test_top1"][method]]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f}")
    return f"| {label} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="folder with mnist/ and cifar10/")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-transfer"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--mnist-per-class", type=int, default=5421, help="MNIST training images per class (5,421: all of the rarest class)")
    parser.add_argument("--mnist-epochs", type=int, default=2)
    parser.add_argument("--cifar-per-class", type=int, default=600, help="CIFAR-10 training images per class")
    parser.add_argument("--cifar-epochs", type=int, default=4)
    parser.add_argument("--source-test-per-class", type=int, default=100, help="test images per class scoring a source")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared machine)")
    parser.add_argument("--only", choices=("mnist", "cifar"), help="run one experiment")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
               "threads": args.threads, "command": "python " + " ".join(sys.argv), "experiments": {}}
    rows = []

    if args.only in (None, "mnist"):
        source = pretrain(args.out / "source-lenet5-mnist", "lenet5", TrainSettings(
            dataset="mnist", epochs=args.mnist_epochs, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4),
            args.data_dir, args.mnist_per_class, args.source_test_per_class)
        source_top1 = final_top1(read_metrics(source))
        for key, label, lr, make in (
            ("digits-mnist-geometry-lr0.01", "MNIST geometry, lr 0.01", 0.01, digits_like_mnist(10)),
            ("digits-mnist-geometry-lr0.05", "MNIST geometry, lr 0.05", 0.05, digits_like_mnist(10)),
            ("digits-upscaled-lr0.01", "digits upscaled 8->32 (default), lr 0.01", 0.01,
             standard_data((1, 32, 32), None, 10)),
        ):
            print(f"A. LeNet-5 MNIST ({100 * source_top1:.2f}%) -> digits, 10 labelled images per class: {label}", flush=True)
            target = TrainSettings(dataset="digits", epochs=30, batch_size=10, lr=lr, momentum=0.9)
            result = few_shot_runs(args.out / key, source, "lenet5", target, make, args.seeds)
            results["experiments"][key] = {**result, "source_test_top1": source_top1}
            rows.append(row(f"LeNet-5 MNIST -> digits (10/class), {label}", result))

    if args.only in (None, "cifar"):
        source = pretrain(args.out / "source-resnet20-cifar10", "resnet20", TrainSettings(
            dataset="cifar10", epochs=args.cifar_epochs, batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-4,
            schedule="cosine", warmup=0.2), args.data_dir, args.cifar_per_class, args.source_test_per_class)
        source_top1 = final_top1(read_metrics(source))
        folder = write_cifar_folder(args.out / "cifar-airplane-ship", args.data_dir, 20, 100)
        print(f"B. ResNet-20 CIFAR-10 ({100 * source_top1:.2f}%) -> airplane vs ship PNG folder, 20 per class", flush=True)
        target = TrainSettings(dataset="imagefolder", epochs=15, batch_size=10, lr=0.01, momentum=0.9, workers=0)
        result = few_shot_runs(args.out / "airplane-ship", source, "resnet20", target,
                               standard_data((3, 32, 32), folder, None), args.seeds)
        results["experiments"]["cifar-airplane-ship"] = {**result, "source_test_top1": source_top1}
        rows.append(row("ResNet-20 CIFAR-10 -> airplane/ship PNGs (20/class), lr 0.01", result))

    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{results['date']}, {results['machine']}, {args.threads} thread(s)\n")
    print("| experiment | scratch | frozen features | fine-tuned |\n| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
