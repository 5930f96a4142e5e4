"""Benchmark the analyzer: `cnnlab.summary` time per model against a bare meta-device build and
against torchinfo (a real forward with hooks), whether their numbers agree, the `--fits` answer
against the measured peak of real CPU training steps, and on CUDA the training-memory estimate
against `torch.cuda.max_memory_allocated` for a real training step.

    python benchmarks/analysis.py                 # every zoo model + five torchvision models, Markdown
    python benchmarks/analysis.py --models 'vgg*' --repeat 5 --no-outside
    python benchmarks/analysis.py --fits-only     # only the CPU --fits check
    python benchmarks/analysis.py --memory-only   # only the CUDA measurement

"bare meta build" is `with torch.device("meta"): model = build(); model.eval()(x)` under no_grad:
what any meta-device tool pays at least (torch's own meta kernels and initialisers included).
torchinfo's "mult-adds" also count bias additions and batch-norm affine terms, so they run a
little above our MACs (convolution and linear multiply-accumulates only, as torchvision counts).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torchvision

import cnnlab
from cnnlab.analysis import summary
from cnnlab.analysis.fits import largest_batch, memory_at, parse_bytes
from cnnlab.analysis.measure import measure_training_step
from cnnlab.models.external import build_model

# five torchvision models outside the zoo, at the input their weights' metadata was measured at
OUTSIDE = {"mobilenet_v2": (3, 224, 224), "densenet121": (3, 224, 224), "inception_v3": (3, 299, 299),
           "squeezenet1_0": (3, 224, 224), "efficientnet_b0": (3, 224, 224)}
FITS = [("resnet18", "2GiB"), ("alexnet_torchvision", "1GiB"), ("googlenet", "1536MiB")]


def best_of_interleaved(functions, repeat: int, least_seconds: float = 1.0) -> list[float]:
    """The fastest call of each function, called in turn (a, b, a, b, ...) at least `repeat` times
    each and until `least_seconds` have passed (a model of a millisecond gets hundreds, as
    timeit's autorange does). In turn, so that both see the same machine: this VM's speed drifts
    within seconds, and two blocks timed one after the other measured the drift as much as the code."""
    times = [[] for _ in functions]
    started = time.perf_counter()
    while len(times[0]) < repeat or time.perf_counter() - started < least_seconds:
        for fn, taken in zip(functions, times):
            start = time.perf_counter()
            fn()
            taken.append(time.perf_counter() - start)
    return [min(taken) for taken in times]


def bare_builder(name: str):
    if name.startswith("torchvision.models:"):
        return getattr(torchvision.models, name.split(":")[1])
    return lambda: cnnlab.create(name, guard=False)


def bare_meta(name: str, shape):
    """What any meta-device tool pays at least: build on meta (initialisers included), one eval forward."""
    build = bare_builder(name)

    def bare():
        with torch.device("meta"), torch.no_grad():
            build().eval()(torch.empty(1, *shape))

    return bare


def time_torchinfo(name: str, shape):
    import torchinfo

    model = build_model(name, meta=False)
    start = time.perf_counter()
    stats = torchinfo.summary(model, input_size=(1, *shape), verbose=0, device="cpu")
    return time.perf_counter() - start, stats.total_params, stats.total_mult_adds


def milliseconds(seconds: float) -> str:
    """Two significant figures below 10 ms (a 1.4 ms build is not "1"), whole milliseconds above."""
    return f"{seconds * 1e3:.1f}" if seconds < 0.01 else f"{seconds * 1e3:.0f}"


def compare(names: list[str], repeat: int) -> None:
    start = time.perf_counter()
    summary("lenet5")  # the first call pays one-off imports; report it separately
    print(f"first call in this process (lenet5, incl. one-off imports): {time.perf_counter() - start:.2f} s\n")
    print("| model | input | summary (ms, best) | bare meta build (ms, best) | summary / bare | torchinfo (ms) "
          "| params equal | MACs | torchinfo mult-adds | ratio |")
    print("|---|---|---:|---:|---:|---:|:---:|---:|---:|---:|")
    for name in names:
        shape = OUTSIDE.get(name.split(":")[-1])
        result = summary(name, shape)
        shape = result.input_shape
        ours, bare = best_of_interleaved([lambda: summary(name, shape), bare_meta(name, shape)], repeat)
        theirs, params, mult_adds = time_torchinfo(name, shape)
        print(f"| {name} | {'×'.join(map(str, shape))} | {milliseconds(ours)} | {milliseconds(bare)} | {ours / bare:.2f} | "
              f"{theirs * 1e3:.0f} | {'yes' if params == result.totals.params else f'no ({params:,})'} | "
              f"{result.totals.macs:,} | {mult_adds:,} | {mult_adds / result.totals.macs:.4f} |", flush=True)


def check_fits() -> None:
    """`--fits` on CPU: the batch it answers, trained for real (SGD with momentum, fp32)."""
    print("\n### `--fits` against real CPU training steps (fp32, SGD with momentum)\n")
    print("| model | budget | batch answered | estimate | measured peak | measured / estimate | "
          "measured fits |")
    print("|---|---|---:|---:|---:|---:|:---:|")
    for name, budget in FITS:
        result = summary(name)
        limit = parse_bytes(budget)
        batch = largest_batch(result, limit, "fp32", "sgd")
        estimate = memory_at(result, batch, "fp32", "sgd").total
        torch.manual_seed(0)
        model = cnnlab.create(name, guard=False)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(batch, *result.input_shape)
        y = torch.randint(0, model.card.num_classes, (batch,))
        measured = measure_training_step(model, x, y, optimizer).total
        print(f"| {name} | {budget} | {batch} | {estimate / 2**20:,.1f} MiB | {measured / 2**20:,.1f} MiB | "
              f"{measured / estimate:.3f} | {'yes' if measured <= limit else 'no'} |", flush=True)
        del model, optimizer, x, y


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
    parser.add_argument("--models", default="*", help="shell pattern over zoo names (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=10, help="timed calls per model at least, and as many "
                        "as fill a second; the best counts (default: %(default)s)")
    parser.add_argument("--no-outside", action="store_true", help="leave out the five torchvision models")
    parser.add_argument("--fits-only", action="store_true", help="only the CPU --fits check")
    parser.add_argument("--memory-only", action="store_true", help="only the CUDA measurement")
    args = parser.parse_args()
    print(f"## cnnlab summary benchmark — torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads\n")
    if not (args.memory_only or args.fits_only):
        outside = [] if args.no_outside else [f"torchvision.models:{name}" for name in OUTSIDE]
        compare(cnnlab.list_models(args.models) + outside, args.repeat)
    if not args.memory_only:
        check_fits()
    measure_training_memory()


if __name__ == "__main__":
    main()
