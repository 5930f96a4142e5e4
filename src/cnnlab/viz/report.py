"""`report.html`: one self-contained page per run (images embedded as base64, no scripts, no
network) that the trainer writes at the end of every run and `cnnlab report RUN` rewrites.

Every figure is also left in the run's figures/ folder. A section that cannot be drawn for this
run (no convolutions to show, test set not on this machine) says why instead of failing the report.
"""

from __future__ import annotations

import base64
import html
import json
import os
import time
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.rundir import FIGURES, read_metrics, require_run_dir

REPORT = "report.html"
FEATURE_CHANNELS = 32  # feature maps per layer in the report (the CLI draws up to --max)
TEST_IMAGES = 3  # test images shown with feature maps and CAMs

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1500px;
       padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
img { max-width: 100%; height: auto; display: block; margin: 0.6em 0; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.note { color: #8a5a00; background: #fff6e0; padding: 0.4em 0.8em; border-left: 3px solid #e0a000; }
.scroll { overflow-x: auto; }
"""


class _Page:
    """Sections of HTML, in order; figures are embedded from their PNG files."""

    def __init__(self):
        self.parts: list[str] = []

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def heading(self, text: str) -> None:
        self.add(f"<h2>{html.escape(text)}</h2>")

    def note(self, text: str) -> None:
        self.add(f'<p class="note">{html.escape(text)}</p>')

    def figure(self, path: Path, alt: str) -> None:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        self.add(f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">')

    def attempt(self, heading: str, draw) -> object:
        """Draw one section; a user-level problem (CnnlabError) becomes a note, not a failed report."""
        self.heading(heading)
        try:
            return draw()
        except CnnlabError as error:
            self.note(f"Not drawn: {error}")
            return None


def write_report(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Path:
    """Render the figures of run `run_dir` into its figures/ and write its report.html; returns the
    report's path. `data_dir` is where the run's data set lives (default: $CNNLAB_DATA or the cache)."""
    from cnnlab.viz.subject import open_subject

    run = require_run_dir(run_dir)
    subject = open_subject(run)
    figures = run / FIGURES
    config = subject.config
    dataset = config.get("dataset", {})
    page = _Page()
    page.add(f"<h1>{html.escape(subject.name)} on {html.escape(str(dataset.get('dataset', '?')))}</h1>")
    page.add(f'<p class="sub">run <code>{html.escape(run.resolve().name)}</code> · report written '
             f"{time.strftime('%Y-%m-%d %H:%M')} · device {html.escape(str(config.get('device', '?')))}</p>")

    page.heading("Final metrics")
    page.add(metrics_table(read_metrics(run)))
    page.attempt("Training curves", lambda: _curves(page, run, figures))
    page.attempt("Architecture", lambda: _architecture(page, subject, figures))
    predictions = page.attempt("Confusion matrix (test set)", lambda: _confusion(page, subject, figures, data_dir))
    if predictions is not None:
        page.attempt("Misclassified test images", lambda: _mistakes(page, subject, predictions, figures))
    page.attempt("First-layer filters", lambda: _filters(page, subject, figures))
    if predictions is not None:
        page.attempt("Feature maps and class activation maps of test images",
                     lambda: _test_images(page, subject, predictions, figures))
    page.heading("Configuration")
    page.add(f"<pre>{html.escape(json.dumps(config, indent=2, sort_keys=True))}</pre>")

    body = "\n".join(page.parts)
    title = html.escape(f"cnnlab report: {subject.name} ({run.resolve().name})")
    document = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>\n'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")
    path = run / REPORT
    tmp = path.with_name(REPORT + ".tmp")
    tmp.write_text(document, encoding="utf-8")
    os.replace(tmp, path)
    return path


def metrics_table(records: list[dict]) -> str:
    """The last record of each split: epoch, loss, top-1 and top-5 accuracy."""
    last = {}
    for record in records:
        last[record.get("split")] = record
    rows = []
    for split in ("train", "val", "test"):
        if split in last:
            r = last[split]
            cells = [split, r.get("epoch", ""), _fmt(r.get("loss"), "{:.4f}"), _fmt(r.get("top1"), "{:.2%}"),
                     _fmt(r.get("top5"), "{:.2%}")]
            rows.append("<tr>" + "".join(f'<td class="num">{html.escape(str(c))}</td>' if i else
                                         f"<td>{html.escape(str(c))}</td>" for i, c in enumerate(cells)) + "</tr>")
    if not rows:
        return '<p class="note">No metrics recorded yet.</p>'
    head = "".join(f'<th class="num">{h}</th>' if i else f"<th>{h}</th>"
                   for i, h in enumerate(["split", "epoch", "loss", "top-1 accuracy", "top-5 accuracy"]))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _fmt(value, pattern: str) -> str:
    return "" if value is None else pattern.format(value)


def markdown_table(text: str) -> str:
    """The analyzer's Markdown ("### title", a pipe table, "- total" lines) as HTML."""
    out: list[str] = []
    table: list[list[str]] = []
    items: list[str] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set(":- ") for c in cells):  # skip the |---|---| separator
                table.append(cells)
            continue
        if table:
            out.append(_html_table(table))
            table = []
        if line.startswith("- "):
            items.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if items:
            out.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if line.startswith("### "):
            out.append(f"<h3>{html.escape(line[4:])}</h3>")
    return '<div class="scroll">' + "\n".join(out) + "</div>"


def _html_table(rows: list[list[str]]) -> str:
    def cell(tag, text):
        numeric = text.replace(",", "").replace(".", "").replace("-", "").strip().isdigit()
        return f'<{tag}{" class=num" if numeric else ""}>{html.escape(text)}</{tag}>'

    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(cell("td", c) for c in row) + "</tr>" for row in rows[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def _curves(page: _Page, run: Path, figures: Path) -> None:
    from cnnlab.viz.curves import plot_curves

    path, _ = plot_curves([run], figures / "curves.png")
    page.figure(path, "training curves")


def _architecture(page: _Page, subject, figures: Path) -> None:
    from cnnlab.analysis import render, summary
    from cnnlab.viz.architecture import plot_architecture

    path, _ = plot_architecture(subject.model, subject.input_shape, figures / "architecture.png", subject.name)
    page.figure(path, "architecture diagram")
    page.add(markdown_table(render(summary(subject.model, subject.input_shape), "md")))


def _confusion(page: _Page, subject, figures: Path, data_dir):
    from cnnlab.viz.confusion import plot_confusion
    from cnnlab.viz.predictions import predict_test_set

    predictions = predict_test_set(subject, data_dir)
    path, _ = plot_confusion(subject, predictions, figures)
    page.figure(path, "confusion matrix")
    return predictions


def _mistakes(page: _Page, subject, predictions, figures: Path) -> None:
    from cnnlab.viz.confusion import plot_mistakes

    path, _ = plot_mistakes(subject, predictions, figures)
    page.figure(path, "misclassified test images")


def _filters(page: _Page, subject, figures: Path) -> None:
    from cnnlab.viz.filters import plot_filters

    path, _ = plot_filters(subject, figures)
    page.figure(path, "first-layer filters")


def example_indices(predictions, count: int = TEST_IMAGES) -> list[int]:
    """The first test image of each of the first `count` classes present: a fixed, varied choice."""
    picked = []
    for k in np.unique(predictions.labels)[:count]:
        picked.append(int(np.flatnonzero(predictions.labels == k)[0]))
    return picked


def _test_images(page: _Page, subject, predictions, figures: Path) -> None:
    from cnnlab.viz.activations import default_layers, plot_activations
    from cnnlab.viz.cam import plot_cam

    layers = default_layers(subject.model)
    layers = layers[:1] + layers[-1:] if len(layers) > 1 else layers
    for i in example_indices(predictions):
        x = subject.adapt(predictions.images[i : i + 1])
        truth = subject.classes[predictions.labels[i]]
        page.add(f"<h3>test image {i} (class {html.escape(truth)})</h3>")
        path, _, _ = plot_cam(subject, x, figures, "gradcam", stem=f"test{i}-cam")
        page.figure(path, f"Grad-CAM of test image {i}")
        for path, _ in plot_activations(subject, x, figures, layers, FEATURE_CHANNELS, stem=f"test{i}-activations"):
            page.figure(path, f"feature maps of test image {i}")
