"""Speed of the NumPy engine against PyTorch on CPU (results: docs/scratch.md, "Benchmarks").

    python benchmarks/scratch.py [--threads 2] [--repeats 7]

1. One convolution forward pass, naive loop vs im2col vs torch.nn.functional.conv2d, at LeNet-5's
   C1 and AlexNet's conv1 shapes.
2. One full LeNet-5 training step (forward, loss, backward, SGD update), scratch (im2col) vs torch.

NumPy's BLAS and torch get the same number of threads. Measurements are interleaved and the
median is reported, so a busy machine slows both sides alike (but still adds noise).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

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


def step_row(batch_size: int, repeats: int) -> str:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch_size, 1, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch_size)
    model = scratch.lenet5(seed=0)
    optimizer = scratch.SGD(model.parameters(), lr=0.01, momentum=0.9)
    reference = cnnlab.create("lenet5")
    torch_optimizer = torch.optim.SGD(reference.parameters(), lr=0.01, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def torch_step():
        torch_optimizer.zero_grad()
        F.cross_entropy(reference(xt), yt).backward()
        torch_optimizer.step()

    ms = median_ms({"scratch": lambda: train_step(model, optimizer, x, y), "torch": torch_step}, repeats * 5)
    return (f"| LeNet-5 training step | batch {batch_size}, 1×32×32 | – | {ms['scratch']:.2f} | {ms['torch']:.2f} "
            f"| {ms['scratch'] / ms['torch']:.1f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for NumPy's BLAS and for torch (default: 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per measurement (default: 7)")
    parser.add_argument("--batch-size", type=int, default=64, help="training-step batch (default: 64)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {args.threads} threads, "
              f"numpy {np.__version__}, torch {torch.__version__}, float32, median of interleaved rounds (ms)\n")
        print("| what | shape | naive | im2col / scratch | torch | scratch ÷ torch |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for row in conv_rows(args.repeats):
            print(row)
        print(step_row(args.batch_size, args.repeats))


if __name__ == "__main__":
    main()
