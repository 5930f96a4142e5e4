"""Speed and accuracy of the NumPy engine against PyTorch on CPU (results: BENCHMARKS.md, "The NumPy engine").

    python benchmarks/scratch.py --threads 1                          # speed: convolutions and training steps
    python benchmarks/scratch.py --threads 1 --cifar --data-dir ../shared/data   # + the short CIFAR-10 run

1. One convolution forward pass, naive loop vs im2col vs torch.nn.functional.conv2d, at LeNet-5's
   C1 and AlexNet's conv1 shapes.
2. One full training step (forward, loss, backward, SGD update) of LeNet-5 (batch 64, 1×32×32) and
   ResNet-20 (batch 128, 3×32×32), scratch vs torch, in ms and images/s.
3. `--cifar`: ResNet-20 trained by both engines side by side from the same initial weights, on the
   same batches (same shuffling, flips and padded shifts, drawn once in NumPy), SGD 0.1 with
   momentum 0.9 and weight decay 1e-4, cosine over the epochs; both tested after every epoch.
   Writes the curves (JSON) and one plot of both (`--plot`, default docs/images/scratch-resnet20-cifar10.png).

NumPy's BLAS and torch get the same number of threads. Measurements are interleaved and the
median is reported, so a busy machine slows both sides alike (but still adds noise).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

import cnnlab
from cnnlab import scratch
from cnnlab.scratch import conv
from cnnlab.scratch.train import train_step

# name, batch, in channels, size, out channels, kernel, stride, padding
CONV_SHAPES = [
    ("LeNet-5 C1", 64, 1, 32, 6, 5, 1, 0),
    ("AlexNet conv1", 4, 3, 227, 96, 11, 4, 0),
]
# title, model, batch, in channels
STEP_MODELS = [("LeNet-5", "lenet5", 64, 1), ("ResNet-20", "resnet20", 128, 3)]


def median_ms(functions: dict, repeats: int) -> dict:
    """Median wall time of each function in ms, measured round-robin after one warm-up call."""
    for f in functions.values():
        f()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, f in functions.items():
            start = time.perf_counter()
            f()
            times[name].append(1e3 * (time.perf_counter() - start))
    return {name: statistics.median(t) for name, t in times.items()}


def im2col_conv(x, w, b, stride, padding):
    layer = scratch.Conv2d(w.shape[1], w.shape[0], w.shape[2], stride, padding)
    layer.weight.data, layer.bias.data = w, b
    return layer.forward(x)


def conv_rows(repeats: int) -> list[str]:
    rng = np.random.default_rng(0)
    rows = []
    for name, n, c, size, o, k, s, p in CONV_SHAPES:
        x = rng.standard_normal((n, c, size, size)).astype(np.float32)
        w = rng.standard_normal((o, c, k, k)).astype(np.float32)
        b = rng.standard_normal(o).astype(np.float32)
        xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))
        ms = median_ms({
            "naive": lambda: conv.conv2d_naive(x, w, b, s, p),
            "im2col": lambda: im2col_conv(x, w, b, s, p),
            "torch": lambda: F.conv2d(xt, wt, bt, stride=s, padding=p),
        }, max(3, repeats // 2))
        shape = f"{n}×{c}×{size}×{size} → {o}@{k}×{k}/{s}"
        rows.append(f"| {name} forward | {shape} | {ms['naive']:.1f} | {ms['im2col']:.2f} | {ms['torch']:.2f} "
                    f"| {ms['im2col'] / ms['torch']:.1f}× |")
    return rows


def twins(name: str, seed: int = 0):
    """The zoo's torch model and the scratch model holding the same initial weights (float32)."""
    torch.manual_seed(seed)
    reference = cnnlab.create(name)
    model = scratch.build(name)
    model.load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    return reference, model


def torch_step(reference, optimizer, x, y) -> tuple[float, torch.Tensor]:
    optimizer.zero_grad()
    logits = reference(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item(), logits.detach()


def step_rows(repeats: int) -> list[str]:
    rows = []
    for title, name, batch_size, channels in STEP_MODELS:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch_size, channels, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, batch_size)
        reference, model = twins(name)
        optimizer = scratch.SGD(model.parameters(), lr=0.01, momentum=0.9)
        torch_optimizer = torch.optim.SGD(reference.parameters(), lr=0.01, momentum=0.9)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        rounds = repeats * 5 if name == "lenet5" else repeats
        ms = median_ms({"scratch": lambda: train_step(model, optimizer, x, y),
                        "torch": lambda: torch_step(reference, torch_optimizer, xt, yt)}, rounds)
        rows.append(f"| {title} training step | batch {batch_size}, {channels}×32×32 | – | {ms['scratch']:.2f} "
                    f"({1e3 * batch_size / ms['scratch']:,.0f} img/s) | {ms['torch']:.2f} ({1e3 * batch_size / ms['torch']:,.0f} img/s) "
                    f"| {ms['scratch'] / ms['torch']:.2f}× |")
    return rows


def cifar_run(args) -> dict:
    """Both engines through the same short CIFAR-10 run; returns their curves."""
    from cnnlab.data import dataset_info, load_arrays
    from cnnlab.scratch.data import prepare, random_flip, random_shift
    from cnnlab.scratch.train import cosine_lr, evaluate

    info = dataset_info("cifar10")
    (x, y, _), (xt, yt, _) = (load_arrays("cifar10", split, args.data_dir) for split in ("train", "test"))
    x, y = prepare(x[: args.train_size], 32, info.mean, info.std), y[: args.train_size]
    xt, yt = prepare(xt[: args.test_size], 32, info.mean, info.std), yt[: args.test_size]
    reference, model = twins("resnet20", args.seed)
    optimizer = scratch.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    torch_optimizer = torch.optim.SGD(reference.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(args.seed + 1)
    curves = {engine: {"step_loss": [], "epochs": []} for engine in ("scratch", "torch")}
    for epoch in range(1, args.epochs + 1):
        lr = cosine_lr(args.lr, epoch, args.epochs)
        optimizer.lr = lr
        for group in torch_optimizer.param_groups:
            group["lr"] = lr
        x_epoch = random_flip(random_shift(x, 4, rng, 0.0), rng)
        seconds, correct, losses = {"scratch": 0.0, "torch": 0.0}, {"scratch": 0, "torch": 0}, {"scratch": [], "torch": []}
        model.train()  # testing left both in evaluation mode
        reference.train()
        for index in np.array_split(rng.permutation(len(x)), math.ceil(len(x) / args.batch_size)):
            xb, yb = np.ascontiguousarray(x_epoch[index]), y[index]
            start = time.perf_counter()
            loss, logits = train_step(model, optimizer, xb, yb)
            seconds["scratch"] += time.perf_counter() - start
            losses["scratch"].append(loss)
            correct["scratch"] += int((logits.argmax(axis=1) == yb).sum())
            start = time.perf_counter()
            loss, logits = torch_step(reference, torch_optimizer, torch.from_numpy(xb), torch.from_numpy(yb))
            seconds["torch"] += time.perf_counter() - start
            losses["torch"].append(loss)
            correct["torch"] += int((logits.argmax(dim=1).numpy() == yb).sum())
        test = {"scratch": evaluate(model, xt, yt, args.batch_size), "torch": torch_evaluate(reference, xt, yt, args.batch_size)}
        for engine, curve in curves.items():
            curve["step_loss"] += losses[engine]
            curve["epochs"].append({"epoch": epoch, "lr": lr, "train_loss": float(np.mean(losses[engine])),
                                    "train_top1": correct[engine] / len(x), "test_loss": test[engine]["loss"],
                                    "test_top1": test[engine]["top1"], "train_seconds": seconds[engine],
                                    "images_per_s": len(x) / seconds[engine]})
        print(f"epoch {epoch}/{args.epochs}: " + "   ".join(
            f"{engine} train loss {c['epochs'][-1]['train_loss']:.4f} test {100 * c['epochs'][-1]['test_top1']:.2f}% "
            f"({c['epochs'][-1]['images_per_s']:.0f} img/s)" for engine, c in curves.items()), flush=True)
    return curves


def torch_evaluate(reference, x, y, batch_size) -> dict:
    reference.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = reference(torch.from_numpy(x[start : start + batch_size]))
            target = torch.from_numpy(y[start : start + batch_size])
            loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
            correct += int((logits.argmax(dim=1) == target).sum())
    return {"loss": loss_sum / len(x), "top1": correct / len(x)}


def plot(curves: dict, args, path: Path) -> None:
    """Training loss per step and test accuracy per epoch, both engines on one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    steps_per_epoch = math.ceil(args.train_size / args.batch_size)
    for engine, style in (("scratch", dict(color="tab:blue")), ("torch", dict(color="tab:orange", linestyle="--"))):
        losses = np.array(curves[engine]["step_loss"])
        window = min(steps_per_epoch, len(losses))
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        left.plot(np.arange(window, len(losses) + 1) / steps_per_epoch, smooth, label=f"{engine} (mean of {window} steps)", **style)
        epochs = curves[engine]["epochs"]
        right.plot([e["epoch"] for e in epochs], [100 * e["test_top1"] for e in epochs], marker="o", label=engine, **style)
    left.set(xlabel="epoch", ylabel="training loss", title="ResNet-20 training loss")
    right.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"CIFAR-10 test accuracy ({args.test_size:,} images)")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(f"NumPy engine vs PyTorch, same initial weights and batches: {args.train_size:,} training images, "
                 f"{args.epochs} epochs, batch {args.batch_size}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for NumPy's BLAS and for torch (default: 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per measurement (default: 7)")
    parser.add_argument("--skip-speed", action="store_true", help="skip sections 1 and 2")
    parser.add_argument("--cifar", action="store_true", help="run section 3, the short CIFAR-10 run")
    parser.add_argument("--data-dir", help="folder holding cifar10 (default: $CNNLAB_DATA or ~/.cache/cnnlab)")
    parser.add_argument("--train-size", type=int, default=10_000, help="CIFAR-10 training images (default: 10,000)")
    parser.add_argument("--test-size", type=int, default=10_000, help="CIFAR-10 test images (default: 10,000)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the CIFAR-10 run (default: 5)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch of the CIFAR-10 run (default: 128)")
    parser.add_argument("--lr", type=float, default=0.1, help="initial learning rate of the CIFAR-10 run (default: 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="scratch-cifar.json", help="curves of the CIFAR-10 run (default: scratch-cifar.json)")
    parser.add_argument("--plot", default="docs/images/scratch-resnet20-cifar10.png", help="the plot of both runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        print(f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, {args.threads} threads, "
              f"numpy {np.__version__}, torch {torch.__version__}, float32", flush=True)
        if not args.skip_speed:
            print("median of interleaved rounds (ms)\n")
            print("| what | shape | naive | im2col / scratch | torch | scratch ÷ torch |")
            print("| --- | --- | ---: | ---: | ---: | ---: |")
            for row in conv_rows(args.repeats) + step_rows(args.repeats):
                print(row, flush=True)
        if args.cifar:
            curves = cifar_run(args)
            Path(args.out).write_text(json.dumps({"settings": vars(args), "curves": curves}, indent=1) + "\n")
            plot(curves, args, Path(args.plot))
            print(f"\ncurves: {args.out}, plot: {args.plot}")


if __name__ == "__main__":
    main()
