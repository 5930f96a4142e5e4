"""`report.html`: one self-contained page per run (images embedded as base64, no scripts, no
network), written by `cnnlab report RUN` and at the end of `cnnlab train`.

The report reads the run: its metrics, its summary.json (the analyzer's table, written by the
command line), its stored predictions (the trainer's final evaluation, so the test set is not run
again) and the final weights (checkpoint "last", which made those predictions). Figures are drawn
into a temporary folder and embedded; `cnnlab viz` is for figure files. A section that cannot be
drawn (no convolutions, test images not on this machine) says why instead of failing the report,
and every missing section is listed at the top of the report and on stderr.
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError, warn
from cnnlab.run import REPORT, SUMMARY_JSON, check_output, read_metrics, require_run_dir, write_atomic

FEATURE_CHANNELS = 32  # feature maps per layer in the report (the CLI draws up to --max)
TEST_IMAGES = 3  # test images shown with feature maps and CAMs

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1500px;
       padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; max-width: 100%; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; overflow-wrap: anywhere; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; overflow-wrap: normal; }
th { background: #f3f3f3; }
img, svg { max-width: 100%; height: auto; display: block; margin: 0.6em 0; }
pre { background: #f6f6f6; padding: 0.8em; font-size: 0.85em; white-space: pre-wrap; overflow-wrap: anywhere; }
.note { color: #8a5a00; background: #fff6e0; padding: 0.4em 0.8em; border-left: 3px solid #e0a000; }
"""

class _Page:
    """Sections of HTML, in order; figures are embedded from their PNG files."""

    def __init__(self):
        self.parts: list[str] = []
        self.missing: list[str] = []  # "section: reason" for every section not drawn

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def heading(self, text: str) -> None:
        self.add(f"<h2>{html.escape(text)}</h2>")

    def note(self, text: str) -> None:
        self.add(f'<p class="note">{html.escape(text)}</p>')

    def figure(self, path: Path, alt: str) -> None:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        self.add(f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">')

    def svg(self, path: Path, label: str) -> None:
        """An SVG file inline (its text stays text: searchable, sharp at any zoom)."""
        text = Path(path).read_text(encoding="utf-8")
        self.add(text[text.index("<svg"):].replace("<svg", f'<svg role="img" aria-label="{html.escape(label)}"', 1))

    def attempt(self, heading: str, draw) -> object:
        """Draw one section; a user-level problem (CnnlabError) becomes a note, not a failed report."""
        self.heading(heading)
        try:
            return draw()
        except CnnlabError as error:
            self.lack(heading, str(error))
            return None

    def lack(self, section: str, reason: str) -> None:
        self.note(f"Not drawn: {reason}")
        self.missing.append(f"{section} ({reason})")


def write_report(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Write run `run_dir`'s report.html (an existing one is replaced only with `force`); returns
    its path. `data_dir`: where the run's test images are, if not where the run found them."""
    from cnnlab.viz.subject import open_subject

    run = require_run_dir(run_dir)
    path = check_output(run / REPORT, force)
    subject = open_subject(run, which="last")
    config = subject.config
    dataset = config["dataset"]
    page = _Page()
    with tempfile.TemporaryDirectory(prefix="cnnlab-report-") as tmp:
        figures = Path(tmp)
        page.heading("Final metrics")
        page.add(metrics_table(read_metrics(run)))
        page.attempt("Training curves", lambda: _curves(page, run, figures))
        page.attempt("Architecture", lambda: _architecture(page, subject, figures))
        test = page.attempt("Confusion matrix (test set)", lambda: _confusion(page, subject, figures, data_dir))
        if test is not None and test.images is None:
            page.heading("Misclassified test images")
            page.lack("Misclassified test images", test.missing)
        elif test is not None:
            page.attempt("Misclassified test images", lambda: _mistakes(page, subject, test, figures))
        page.attempt("First-layer filters", lambda: _filters(page, subject, figures))
        if test is not None and test.images is not None:
            page.attempt("Feature maps and class activation maps of test images",
                         lambda: _test_images(page, subject, test, figures))
    page.heading("Configuration")
    page.add(f"<pre>{html.escape(json.dumps(config, indent=2, sort_keys=True))}</pre>")

    top = [f"<h1>{html.escape(subject.name)} on {html.escape(str(dataset['dataset']))}</h1>",
           f'<p class="sub">run <code>{html.escape(run.resolve().name)}</code> · weights of checkpoint '
           f"<code>{html.escape(subject.checkpoint.name)}</code> · report written {time.strftime('%Y-%m-%d %H:%M')}"
           f" · device {html.escape(str(config.get('device', '?')))}</p>"]
    if page.missing:
        top.append('<p class="note">This report lacks: ' + html.escape("; ".join(page.missing)) + "</p>")
        warn(f"{path} lacks: " + "; ".join(page.missing))
    body = "\n".join(top + page.parts)
    title = html.escape(f"cnnlab report: {subject.name} ({run.resolve().name})")
    document = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>\n'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")
    return write_atomic(path, document)


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


def summary_table(summary: dict) -> str:
    """The analyzer's table (summary.json) as HTML: the columns a reader needs at a glance."""
    head = ["layer", "type", "output", "kernel / stride", "parameters", "MACs", "receptive field"]
    rows = []
    for row in summary["rows"]:
        window = f"{_axes(row['kernel'])} / {_axes(row['stride'])}" if row["kernel"] else ""
        field = row["receptive_field"]
        cells = [row["name"], row["type"], "×".join(map(str, row["output_shape"])), window,
                 f"{row['params_trainable'] + row['params_frozen']:,}", f"{row['macs']:,}", _field(field)]
        rows.append("<tr>" + "".join(f'<td class="num">{html.escape(c)}</td>' if i in (4, 5) else
                                     f"<td>{html.escape(c)}</td>" for i, c in enumerate(cells)) + "</tr>")
    totals = summary["totals"]
    heads = "".join(f'<th class="num">{h}</th>' if i in (4, 5) else f"<th>{h}</th>" for i, h in enumerate(head))
    caption = (f"{summary['model']} at {'×'.join(map(str, summary['input_shape']))}: {totals['params']:,} parameters, "
               f"{totals['macs']:,} multiply-accumulates per image")
    return f'<p>{html.escape(caption)}</p><table><tr>{heads}</tr>{"".join(rows)}</table>'



def _field(axes) -> str:
    """Receptive field size and jump; after a flatten there is no jump: the field is the whole input."""
    if not axes:
        return ""
    jumps = [a["jump"] for a in axes]
    size = _axes([a["size"] for a in axes])
    return f"{size} (whole input)" if None in jumps else f"{size} (jump {_axes(jumps)})"


def _axes(values) -> str:
    """One number when every spatial axis agrees, else H×W."""
    values = [v for v in values if v is not None]
    return str(values[0]) if values and len(set(values)) == 1 else "×".join(map(str, values))


def _curves(page: _Page, run: Path, figures: Path) -> None:
    from cnnlab.viz.curves import plot_curves

    path, _ = plot_curves([run], figures / "curves.png")
    page.figure(path, "training curves")


def _architecture(page: _Page, subject, figures: Path) -> None:
    from cnnlab.viz.architecture import plot_architecture

    [path], _ = plot_architecture(subject.model, subject.input_shape, figures / "architecture", subject.name,
                                  formats=("svg",))
    page.svg(path, "architecture graph")
    stored = subject.run / SUMMARY_JSON
    if not stored.is_file():
        raise CnnlabError(f"the run has no {SUMMARY_JSON}: write it with 'cnnlab summary {subject.run} --out ...'")
    page.add(summary_table(json.loads(stored.read_text(encoding="utf-8"))))


def _confusion(page: _Page, subject, figures: Path, data_dir):
    """Drawn from the run's stored predictions (no second pass over the test set); the images
    are read only for the sections that show them."""
    from cnnlab.run.predictions import load_predictions
    from cnnlab.viz.confusion import plot_confusion
    from cnnlab.viz.predictions import TestImages, predict_test_set, stored_test_set

    stored = load_predictions(subject.run)
    if stored is None:  # a run written before predictions were stored: evaluate once
        test = predict_test_set(subject, data_dir)
    else:
        try:
            test = stored_test_set(subject, data_dir, stored)
        except CnnlabError as error:
            test = TestImages(None, stored, f"the test images are not available ({error})")
    path, _ = plot_confusion(subject, test.predictions, figures)
    if stored is not None:
        page.add(f'<p class="sub">from the predictions stored at the end of epoch {stored.epoch} '
                 f"(step {stored.step:,})</p>")
    page.figure(path, "confusion matrix")
    return test


def _mistakes(page: _Page, subject, test, figures: Path) -> None:
    from cnnlab.viz.confusion import plot_mistakes

    path, _ = plot_mistakes(subject, test, figures)
    page.figure(path, "misclassified test images")


def _filters(page: _Page, subject, figures: Path) -> None:
    from cnnlab.viz.filters import plot_filters

    path, _ = plot_filters(subject, figures)
    page.figure(path, "first-layer filters")


def example_indices(labels: np.ndarray, count: int = TEST_IMAGES) -> list[int]:
    """The first test image of each of the first `count` classes present: a fixed, varied choice."""
    return [int(np.flatnonzero(labels == k)[0]) for k in np.unique(labels)[:count]]


SANITY_NOTE = ("Under each map, the model-randomisation check (Adebayo et al. 2018): the same map is computed again "
               "with the weights re-initialised layer by layer from the top, and ρ is the rank correlation of the two "
               "maps, so a map that explains what the model learned must fall to ρ near 0. A method whose maps keep "
               "ρ ≥ {flag} is flagged in red: it shows the input rather than the model, as guided backpropagation "
               "does in that paper.")


def _test_images(page: _Page, subject, test, figures: Path) -> None:
    from cnnlab.viz.activations import default_layers, plot_activations
    from cnnlab.viz.cam import DEFAULT_RULE, default_cam_layer, plot_cam
    from cnnlab.viz.sanity import FLAG_AT

    layers = default_layers(subject.model)
    layers = layers[:1] + layers[-1:] if len(layers) > 1 else layers
    labels = test.predictions.labels
    page.add(f"<p>Grad-CAM at layer <code>{html.escape(default_cam_layer(subject.model, subject.input_shape))}"
             f"</code> ({html.escape(DEFAULT_RULE)}). {html.escape(SANITY_NOTE.format(flag=FLAG_AT))}</p>")
    for n, i in enumerate(example_indices(labels)):
        x = subject.adapt(test.images[i : i + 1])
        truth = subject.classes[labels[i]]
        page.add(f"<h3>test image {i} (class {html.escape(truth)})</h3>")
        path, _, _, check = plot_cam(subject, x, figures, "gradcam", stem=f"test{i}")
        page.figure(path, f"Grad-CAM of test image {i}; {check.verdict}")
        if n == 0:  # feature maps of one image: the first and the last convolution
            for path, _ in plot_activations(subject, x, figures, layers, FEATURE_CHANNELS, stem=f"test{i}"):
                page.figure(path, f"feature maps of test image {i}")
