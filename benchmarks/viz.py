"""How long the end-of-training report takes, and where FLAG_AT of the saliency sanity check
comes from. LeNet-5 is trained on digits by the README's main command (`cnnlab train lenet5`, in
a temporary folder) first.

    python benchmarks/viz.py [--repeat 3] [--threads N] [--sanity]

Prints Markdown tables (the ones in BENCHMARKS.md):
- `write_report` cold: in a fresh process that has imported torch (as `cnnlab train` has when it
  writes the report), so cnnlab's viz imports count; the whole `cnnlab report RUN` command too;
- warm: `write_report` and each figure kind, median of --repeat, wall-clock and process CPU s;
- with --sanity: the Grad-CAM sanity check (viz.sanity) of the predicted class on every 6th test
  image: the mean correlation over the cascade, its mean, 95th percentile and maximum, against a
  map that ignores the weights.
Run it on an idle machine; the load (`uptime`) is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

COLD = """
import sys, time
import torch
torch.set_num_threads({threads})
if {trained}:  # what `cnnlab train` has loaded before it writes the report: the data set's reader
    from cnnlab.data import load_arrays
    load_arrays("digits", "test")
start = time.perf_counter()
from cnnlab.viz import write_report
write_report(sys.argv[1], force=True)
print(time.perf_counter() - start)
"""


def measure(fn, repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def cold(run: Path, threads: int, repeat: int) -> tuple[float, float, float]:
    """write_report in a fresh process after `import torch`, and after the digits data were read
    too (as at the end of `cnnlab train`); the whole `cnnlab report` command."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    times: dict[str, list[float]] = {"torch": [], "trained": [], "command": []}
    for _ in range(repeat):
        for key, trained in (("torch", False), ("trained", True)):
            result = subprocess.run([sys.executable, "-c", COLD.format(threads=threads, trained=trained), str(run)],
                                    capture_output=True, text=True, env=env, check=True)
            times[key].append(float(result.stdout.split()[-1]))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cnnlab", "report", str(run), "--force"], capture_output=True, env=env,
                       check=True)
        times["command"].append(time.perf_counter() - start)
    return tuple(statistics.median(times[key]) for key in ("torch", "trained", "command"))


def sanity(run: Path) -> None:
    from cnnlab.run.predictions import load_predictions
    from cnnlab.viz.cam import cam_check, default_cam_layer
    from cnnlab.viz.predictions import stored_test_set
    from cnnlab.viz.sanity import FLAG_AT, randomisation_check, weighted_layers
    from cnnlab.viz.subject import open_subject

    subject = open_subject(run, which="last")
    test = stored_test_set(subject, None, load_predictions(run))
    layer = default_cam_layer(subject.model, subject.input_shape)
    scores, empty = [], 0
    for i in range(0, len(test.labels), 6):
        x = subject.adapt(test.images[i:i + 1])
        check = cam_check(subject.model, x, layer, int(test.predictions.predicted[i]), "gradcam", subject.input_shape)
        if check.score is None:
            empty += 1
        else:
            scores.append(check.score)
    edges = randomisation_check(subject.model, lambda m: np.abs(np.diff(x[0, 0].numpy(), axis=0)),
                                weighted_layers(subject.model, subject.input_shape)[::-1])
    print(f"\nGrad-CAM at {layer}, predicted class, {len(scores)} test images ({empty} empty maps left out), "
          f"3 seeds per step, FLAG_AT = {FLAG_AT}\n")
    print("| map | mean ρ over the cascade: mean | 95th percentile | max |\n| --- | ---: | ---: | ---: |")
    print(f"| Grad-CAM | {np.mean(scores):.3f} | {np.percentile(scores, 95):.3f} | {np.max(scores):.3f} |")
    print(f"| the input's edges (ignores the weights) | {edges.score:.3f} | {edges.score:.3f} | {edges.score:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--sanity", action="store_true", help="also measure the sanity check's correlations")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    before = load()

    from cnnlab.cli import main as cnnlab
    from cnnlab.viz.activations import plot_activations
    from cnnlab.viz.architecture import plot_architecture
    from cnnlab.viz.cam import plot_cam
    from cnnlab.viz.confusion import plot_confusion, plot_mistakes
    from cnnlab.viz.curves import plot_curves
    from cnnlab.viz.figure import replace_existing
    from cnnlab.viz.filters import plot_filters
    from cnnlab.viz.predictions import stored_test_set
    from cnnlab.viz.report import write_report
    from cnnlab.viz.subject import open_subject
    from cnnlab.run.predictions import load_predictions

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        assert cnnlab(["train", "lenet5", "--out", str(run), "--quiet", "--threads", str(args.threads)]) == 0
        after_torch, after_training, command = cold(run, args.threads, args.repeat)
        replace_existing.set(True)
        subject = open_subject(run, which="last")
        test = stored_test_set(subject, None, load_predictions(run))
        x = subject.adapt(test.images[:1])
        out = Path(tmp) / "figures"
        cases = {
            "write_report (everything)": lambda: write_report(run, force=True),
            "curves": lambda: plot_curves([run], out / "curves.png"),
            "architecture (SVG)": lambda: plot_architecture(subject.model, subject.input_shape, out / "a",
                                                            formats=("svg",)),
            "confusion": lambda: plot_confusion(subject, test.predictions, out),
            "mistakes": lambda: plot_mistakes(subject, test, out),
            "filters (c1)": lambda: plot_filters(subject, out),
            "activations (c1, c3)": lambda: plot_activations(subject, x, out, ["c1", "c3"], 32),
            "Grad-CAM, top-5, with its sanity check": lambda: plot_cam(subject, x, out),
            "Grad-CAM, top-5, no sanity check": lambda: plot_cam(subject, x, out, sanity=False),
            "Score-CAM, top-5, no sanity check": lambda: plot_cam(subject, x, out, "scorecam", sanity=False),
        }
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
              f"{args.threads} threads, median of {args.repeat}\nload before: {before}\n")
        print("| measurement | wall s | CPU s |\n| --- | ---: | ---: |")
        print(f"| write_report, cold: fresh process after `import torch` | {after_torch:.2f} | |")
        print(f"| write_report, cold: after `import torch` and reading digits, as at the end of `cnnlab train` | "
              f"{after_training:.2f} | |")
        print(f"| `cnnlab report RUN` (the whole command) | {command:.2f} | |")
        for name, fn in cases.items():
            fn()  # warm: imports and first-call caches
            wall, cpu = measure(fn, args.repeat)
            print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
        if args.sanity:
            sanity(run)
    print(f"\nload after: {load()}")


if __name__ == "__main__":
    main()
