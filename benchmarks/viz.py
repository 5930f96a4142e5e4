"""How long the end-of-training report takes: `cnnlab.viz.write_report` on a LeNet-5 trained for
3 epochs on the digits data set (trained here first, in a temporary folder), and each figure kind.

    python benchmarks/viz.py [--repeat 3] [--threads 1]

Prints a Markdown table (the one in docs/viz.md): wall-clock and process CPU seconds, median of
--repeat runs. Imports are done before timing. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch


def measure(fn, repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import pytorch_grad_cam  # noqa: F401  (imported before timing, like everything below)

    from cnnlab.training.settings import TrainSettings
    from cnnlab.training.spec import TrainSpec
    from cnnlab.training.trainer import train
    from cnnlab.viz.activations import plot_activations
    from cnnlab.viz.cam import plot_cam
    from cnnlab.viz.confusion import plot_confusion, plot_mistakes
    from cnnlab.viz.curves import plot_curves
    from cnnlab.viz.filters import plot_filters
    from cnnlab.viz.predictions import predict_test_set
    from cnnlab.viz.report import write_report
    from cnnlab.viz.subject import open_subject

    with tempfile.TemporaryDirectory() as tmp:
        settings = TrainSettings(dataset="digits", epochs=3, batch_size=64, val_split=200)
        run = train(TrainSpec("lenet5", settings, out=Path(tmp) / "run", quiet=True)).run_dir
        subject = open_subject(run)
        test = predict_test_set(subject)
        x = subject.adapt(test.images[:1])
        out = Path(tmp) / "figures"
        cases = {
            "write_report (everything)": lambda: write_report(run, force=True),
            "predict test set (360 images)": lambda: predict_test_set(subject),
            "curves": lambda: plot_curves([run], out / "curves.png"),
            "confusion": lambda: plot_confusion(subject, test.predictions, out),
            "mistakes": lambda: plot_mistakes(subject, test, out),
            "filters (c1)": lambda: plot_filters(subject, out),
            "activations (c1, c3)": lambda: plot_activations(subject, x, out),
            "Grad-CAM, top-5": lambda: plot_cam(subject, x, out),
            "Score-CAM, top-5": lambda: plot_cam(subject, x, out, "scorecam"),
        }
        print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, median of {args.repeat}\n")
        print("| figure | wall s | CPU s |\n| --- | ---: | ---: |")
        for name, fn in cases.items():
            wall, cpu = measure(fn, args.repeat)
            print(f"| {name} | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
