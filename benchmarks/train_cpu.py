"""CPU training benchmarks for docs/training.md: wall time and accuracy of real runs.

    python benchmarks/train_cpu.py [--data-dir ../shared/data] [--only digits mnist cifar]
                                   [--threads 1 2] [--repeat 3] [--cifar-steps 300]

1. `cnnlab train lenet5`: the README's main command (digits, its default recipe): wall time of
   the whole command (start-up, data, summary and report included), its training time and final
   test accuracy. Target: <= 8 s warm on 2 cores, >= 98%.
2. LeNet-5 on MNIST (recipe lenet5-mnist): final test accuracy (target >= 99.0%), the training
   time (target <= 15 s) and the whole command (target <= 25 s).
3. ResNet-20 with the resnet-cifar-paper recipe for --cifar-steps steps on CIFAR-10: images/s and
   wall time (the full recipe belongs on a GPU).

Each run is a subprocess (`python -m cnnlab train ...`) into a temporary run directory; training
time and accuracy come from its metrics.jsonl ("time" is the training clock: evaluation, start-up
and the report are outside it). With --repeat N each setting runs N times (the first warms the
page cache) and the table gives the median with every value. --threads lists the thread counts to
compare (default: the recipe's); `uptime` is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def run(argv: list[str], out: Path, threads: int | None) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    extra = ["--threads", str(threads)] if threads else []
    subprocess.run([sys.executable, "-m", "cnnlab", "train", *argv, *extra, "--quiet", "--device", "cpu", "--out",
                    str(out)], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    return wall, [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def last(records, split):
    return [r for r in records if r["split"] == split][-1]


def median_of(values: list[float], unit: str = " s") -> str:
    every = ", ".join(f"{v:.1f}" for v in values)
    return f"**{statistics.median(values):.1f}{unit}**" + (f" ({every})" if len(values) > 1 else "")


def measure(name: str, argv: list[str], tmp: Path, threads: int | None, repeat: int) -> tuple:
    walls, trains, accs, reached = [], [], [], []
    for k in range(repeat):
        wall, records = run(argv, tmp / f"{name}-{threads}-{k}", threads)
        walls.append(wall)
        trains.append(last(records, "train")["time"])
        accs.append(100 * last(records, "test")["top1"])
        reached += [next((r["time"] for r in records if r["split"] == "test" and r["top1"] >= 0.99), None)]
    accuracy = ", ".join(sorted({f"{a:.2f}%" for a in accs}))  # the same on every repeat: the runs are exact
    first99 = "" if name == "digits" else (
        f"; 99.0% first at {reached[0]:.1f} s of training" if reached[0] is not None else "; never reached 99.0%")
    return (f"`{' '.join(['cnnlab train', *argv]).replace(str(SHARED), '../shared/data')}`",
            "recipe's" if threads is None else str(threads), median_of(walls), median_of(trains) + first99, accuracy)


def main() -> None:
    args = parser.parse_args()
    mnist = ["lenet5", "--recipe", "lenet5-mnist", "--data-dir", str(args.data_dir / "mnist")]
    cifar = ["resnet20", "--recipe", "resnet-cifar-paper", "--max-steps", str(args.cifar_steps),
             "--data-dir", str(args.data_dir / "cifar10")]
    settings = {"digits": ["lenet5"], "mnist": mnist, "cifar": cifar}
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; load before: {os.getloadavg()}\n")
    print("| command | threads | whole command | training | final test top-1 |\n| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            for threads in args.threads or [None]:
                row = measure(name, settings[name], Path(tmp), threads, 1 if name == "cifar" else args.repeat)
                print("| " + " | ".join(row) + " |", flush=True)
    print(f"\nload after: {os.getloadavg()}")


parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CNNLAB_SHARED_DATA", SHARED)))
parser.add_argument("--only", nargs="+", choices=("digits", "mnist", "cifar"), default=["digits", "mnist", "cifar"])
parser.add_argument("--cifar-steps", type=int, default=300)
parser.add_argument("--threads", type=int, nargs="+", help="thread counts to compare (default: the recipe's)")
parser.add_argument("--repeat", type=int, default=3, help="runs of each setting (median shown)")

if __name__ == "__main__":
    main()
