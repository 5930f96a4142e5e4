"""Explorer pages: how big they are, how long they take to write, how soon Chromium makes them
interactive.

    python benchmarks/explore.py [--models lenet5 resnet20 ...] [--images 8] [--repeat 3] [--threads N]

For each zoo model (random weights, `--images` pattern images; `run` is a LeNet-5 trained here for
2 epochs on the digits, with 8 of its test images) the page is written to a temporary folder and
opened --repeat times in headless Chromium (selenium and Debian's chromium-driver, a fresh profile
each time). "ready" is milliseconds from navigation start to the page's first complete drawing
(`body[data-ready]`, set once the data are decoded, the derived layers recomputed and every map,
the detail panel and the output drawn): the page is interactive from then on. Prints a Markdown
table; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' Chromium driver

DEFAULT_MODELS = ["run", "lenet5", "resnet20", "nin_cifar", "alexnet", "googlenet", "resnet50", "vgg16", "resnet1202"]


def write_page(name: str, images: int, folder: Path) -> tuple[Path, object, int, float, float]:
    from cnnlab.viz.explore import build_page
    from cnnlab.viz.explore.inputs import chosen_inputs
    from cnnlab.viz.subject import open_subject

    subject = open_subject(name)
    inputs = chosen_inputs(subject, [], None if subject.run is not None else images)
    wall, cpu = time.perf_counter(), time.process_time()
    explorer, page = build_page(subject, inputs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    path = folder / f"{Path(name).name}.html"
    path.write_text(page, encoding="utf-8")
    return path, explorer, len(inputs), wall, cpu


def ready_ms(path: Path, repeat: int, folder: Path) -> list[int]:
    from explore_browser import browser, console_errors, wait_ready

    times = []
    for i in range(repeat):
        driver = browser(folder / f"profile-{path.stem}-{i}")
        try:
            driver.get(path.as_uri())
            times.append(wait_ready(driver, timeout=120))
            errors = console_errors(driver)
            if errors:
                raise SystemExit(f"{path.name}: console errors {errors}")
        finally:
            driver.quit()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--images", type=int, default=8, help="pattern images per zoo model (default 8)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from cnnlab.cli import main as cnnlab

    print("| page | images | channels kept | depth | columns | size MiB | write s (CPU s) | ready ms (median, all) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in args.models:
            spec = name
            if name == "run":
                spec = str(folder / "lenet5-digits")
                cnnlab(["train", "lenet5", "--epochs", "2", "--out", spec, "--quiet", "--device", "cpu"])
            path, explorer, count, wall, cpu = write_page(spec, args.images, folder)
            times = ready_ms(path, args.repeat, folder)
            plan = explorer.plan
            label = "LeNet-5 run (digits, trained)" if name == "run" else name
            kept = f"{plan.channels} of {plan.max_channels}" if plan.channels < plan.max_channels else "all"
            print(f"| {label} | {count} | {kept} | {plan.depth if plan.depth is not None else 'none'} | {len(explorer.nodes)} "
                  f"| {path.stat().st_size / 2**20:.2f} | {wall:.1f} ({cpu:.1f}) | {statistics.median(times)} "
                  f"({', '.join(map(str, times))}) |", flush=True)


if __name__ == "__main__":
    main()
