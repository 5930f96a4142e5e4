"""Benchmark the analyzer: `cnnlab.summary` time per zoo model against torchinfo (a real forward
with hooks), whether their numbers agree, and on CUDA the training-memory estimate against
`torch.cuda.max_memory_allocated` for a real training step.

    python benchmarks/analysis.py                 # every zoo model, Markdown table on stdout
    python benchmarks/analysis.py --models 'vgg*' --repeat 5
    python benchmarks/analysis.py --memory-only   # only the CUDA measurement

torchinfo's "mult-adds" also count bias additions and batch-norm affine terms, so they run a
little above our MACs (convolution and linear multiply-accumulates only, as torchvision counts).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import cnnlab
from cnnlab.analysis import summary


def time_summary(name: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        summary(name)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_torchinfo(name: str):
    import torchinfo

    model = cnnlab.create(name, guard=False)
    start = time.perf_counter()
    stats = torchinfo.summary(model, input_size=(1, *model.card.input_shape), verbose=0, device="cpu")
    return time.perf_counter() - start, stats.total_params, stats.total_mult_adds


def compare_with_torchinfo(pattern: str, repeat: int) -> None:
    start = time.perf_counter()
    summary("lenet5")  # the first call pays one-off imports; report it separately
    print(f"first call in this process (lenet5, incl. one-off imports): {time.perf_counter() - start:.2f} s\n")
    print("| model | input | summary (ms, median) | torchinfo (ms) | params equal | MACs | torchinfo mult-adds | ratio |")
    print("|---|---|---:|---:|:---:|---:|---:|---:|")
    for name in cnnlab.list_models(pattern):
        result = summary(name)
        ours = time_summary(name, repeat)
        theirs, params, mult_adds = time_torchinfo(name)
        shape = "×".join(map(str, result.input_shape))
        print(f"| {name} | {shape} | {ours * 1e3:.0f} | {theirs * 1e3:.0f} | "
              f"{'yes' if params == result.totals.params else f'no ({params:,})'} | {result.totals.macs:,} | "
              f"{mult_adds:,} | {mult_adds / result.totals.macs:.4f} |", flush=True)


def measure_training_memory(batch: int = 64) -> None:
    """Peak memory of a real SGD-with-momentum step (fp32) against the analyzer's estimate."""
    print(f"\n### Training memory, batch {batch}, fp32, SGD with momentum\n")
    if not torch.cuda.is_available():
        print("skipped: no CUDA")
        return
    print(f"device: {torch.cuda.get_device_name()}\n")
    print("| model | estimate | measured peak | estimate / measured |")
    print("|---|---:|---:|---:|")
    for name in ("vgg_d", "resnet50"):
        model = cnnlab.create(name, guard=False).cuda().train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(batch, *model.card.input_shape, device="cuda")
        y = torch.randint(0, model.card.num_classes, (batch,), device="cuda")
        for step in range(2):  # the second step has momentum buffers, as every later one
            if step == 1:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        torch.cuda.synchronize()
        measured = torch.cuda.max_memory_allocated()
        estimate = summary(name, batch=batch).totals.training_memory.total
        print(f"| {name} | {estimate / 2**30:.2f} GiB | {measured / 2**30:.2f} GiB | {estimate / measured:.3f} |")
        del model, optimizer, x, y
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="*", help="shell pattern over zoo names")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-only", action="store_true")
    args = parser.parse_args()
    print(f"## cnnlab summary benchmark — torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads\n")
    if not args.memory_only:
        compare_with_torchinfo(args.models, args.repeat)
    measure_training_memory()


if __name__ == "__main__":
    main()
