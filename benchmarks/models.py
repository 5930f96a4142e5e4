"""What the input guard costs: the per-call fast path, the one meta-device probe a new input shape
costs, and the error path (searching the accepted sizes), against the model's own forward.

    python benchmarks/models.py                       # a few representative models
    python benchmarks/models.py --models lenet5 vgg16 --threads 2

Prints a Markdown table (the one in docs/models.md). Wall-clock timings; run on an idle machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.models.input_guard import InputGuard

DEFAULT_MODELS = ["lenet5", "alexnet", "nin_cifar", "resnet18", "vgg16", "googlenet", "resnet110"]


def seconds(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str) -> list[str]:
    model = cnnlab.create(name).eval()
    channels, height, width = model.card.input_shape
    x = torch.randn(1, channels, height, width)
    guard = next(hook for hook in model._forward_pre_hooks.values() if isinstance(hook, InputGuard))
    with torch.no_grad():
        model(x)
        forward = seconds(lambda: model(x))
    hook = seconds(lambda: [guard(model, (x,)) for _ in range(1000)]) / 1000

    def new_shape():  # a fresh guard each time, so the probe really runs
        fresh = InputGuard(name, model.card.input_shape)
        fresh(model, (torch.empty(1, channels, height + 1, width + 1, device="meta"),))

    def error_path():
        fresh = InputGuard(name, model.card.input_shape)
        try:
            fresh(model, (torch.empty(1, channels, 2, 2, device="meta"),))
        except CnnlabError:
            pass

    probe = seconds(new_shape, repeat=3)
    error = seconds(error_path, repeat=1)
    return [name, f"{forward * 1e3:.1f}", f"{hook * 1e6:.1f}", f"{100 * hook / forward:.3f}",
            f"{probe * 1e3:.0f}", f"{error * 1e3:.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.empty(1, device="meta") + 1  # the meta device's one-time warm-up is not the guard's cost
    machine = platform.processor() or platform.machine()
    print(f"{machine}, {torch.get_num_threads()} threads, torch {torch.__version__}\n")
    header = ["model", "forward, batch 1 (ms)", "guard fast path (µs)", "overhead (%)",
              "new shape: one probe (ms)", "wrong shape: error with sizes (ms)"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name in args.models:
        print("| " + " | ".join(measure(name)) + " |", flush=True)


if __name__ == "__main__":
    main()
