"""CPU training benchmarks for docs/training.md (issue 4): wall time and accuracy of real runs.

    python benchmarks/train_cpu.py [--data-dir ../shared/data] [--only digits mnist cifar] [--cifar-steps 300]

1. `cnnlab train lenet5`: the README's first command (digits, its default recipe): wall time of
   the whole command (start-up and data included) and final test accuracy. Target: < 60 s, >= 97%.
2. LeNet-5 on MNIST (recipe lenet5-mnist, 10 epochs): final test accuracy (target >= 99.0%), the
   wall time of the run and the time at which the test accuracy first reached 99.0%.
3. ResNet-20 with the resnet-cifar-paper recipe for --cifar-steps steps on CIFAR-10: images/s and
   wall time (the full recipe belongs on a GPU).

Each run is a subprocess (`python -m cnnlab train ...`) into a temporary run directory; the numbers
come from its metrics.jsonl. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
                    str(out)], check=True)
    wall = time.perf_counter() - started
    return wall, [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def last(records, split):
    return [r for r in records if r["split"] == split][-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CNNLAB_SHARED_DATA", SHARED)))
    parser.add_argument("--only", nargs="+", choices=("digits", "mnist", "cifar"), default=["digits", "mnist", "cifar"])
    parser.add_argument("--cifar-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, help="passed to cnnlab train (1 on a machine shared with others)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "digits" in args.only:
            wall, records = run(["lenet5"], tmp / "digits", args.threads)
            rows.append(("`cnnlab train lenet5` (digits, 15 epochs)", f"{wall:.1f} s",
                         f"{100 * last(records, 'test')['top1']:.2f}%", "cnnlab train lenet5"))
        if "mnist" in args.only:
            argv = ["lenet5", "--recipe", "lenet5-mnist", "--data-dir", str(args.data_dir / "mnist")]
            wall, records = run(argv, tmp / "mnist", args.threads)
            reached = [r["time"] for r in records if r["split"] == "test" and r["top1"] >= 0.99]
            when = f", 99.0% first at {reached[0]:.0f} s" if reached else ", never reached 99.0%"
            rows.append(("LeNet-5 on MNIST (lenet5-mnist, 10 epochs)", f"{wall:.1f} s{when}",
                         f"{100 * last(records, 'test')['top1']:.2f}%", "cnnlab train " + " ".join(argv)))
        if "cifar" in args.only:
            argv = ["resnet20", "--recipe", "resnet-cifar-paper", "--max-steps", str(args.cifar_steps),
                    "--data-dir", str(args.data_dir / "cifar10")]
            wall, records = run(argv, tmp / "cifar", args.threads)
            train = last(records, "train")
            rows.append((f"ResNet-20, resnet-cifar-paper, {args.cifar_steps} steps", f"{wall:.1f} s "
                         f"({train['images_per_s']:.0f} img/s training)", f"{100 * last(records, 'test')['top1']:.2f}%",
                         "cnnlab train " + " ".join(argv)))
    print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, threads {args.threads or 'default'}\n")
    print("| run | wall time | test top-1 | command |\n| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row[:3]) + f" | `{row[3]}` |")


if __name__ == "__main__":
    main()
