"""`cnnlab explore`: the CNN Explainer idea for every zoo model and every run.

One self-contained HTML page shows the network as columns of feature maps (the analyzer's rows,
blocks folded as in `summary --depth`, branches and shortcuts drawn), a map in detail with its
kernels, one unit's exact receptive field on the input and its arithmetic with the real numbers,
and the output: logits, softmax, top-5 and Grad-CAM with its sanity check. `--serve` serves the
same page from a local server that runs the model on uploaded or drawn images.

    record.py    the real forward pass, one record per analyzer row, with the graph's edges
    network.py   nodes (folded rows), what each stores or the page recomputes, weights, geometry
    document.py  the plan (what fits in the file) and the JSON document: network + image records
    adapters.py  graph layout, Grad-CAM and its one-step sanity check (one call site each)
    inputs.py    which images: named files, a run's test images, or patterns; uploads
    page.py      the HTML (static/: the page's script, styles and labels)
    server.py    live mode
"""

from __future__ import annotations

import os
from pathlib import Path

EXPLORE_FILE = "explore.html"  # in a run folder; a zoo model's page goes to ./explore-MODEL.html


def default_output(subject) -> Path:
    return subject.run / EXPLORE_FILE if subject.run is not None else Path(f"explore-{subject.name}.html")


def build_page(subject, images: list, lang: str = "en", depth: int | None = None, channels: int | None = None,
               cam_classes: int | None = None, sanity: bool = True, live: bool = False):
    """(explorer, html) for `subject` and [(input, name, true class)] `images`."""
    from cnnlab.viz.explore.document import Explorer
    from cnnlab.viz.explore.page import check_language, render

    check_language(lang)
    explorer = Explorer(subject, images[0][0], len(images), depth, channels, cam_classes, sanity)
    records = [explorer.image(x, name, label) for x, name, label in images]
    return explorer, render(explorer.network(), records, lang, live)


def write_explorer(spec: str | os.PathLike, image_files: list[str] = (), out: str | os.PathLike | None = None,
                   lang: str = "en", force: bool = False, depth: int | None = None, channels: int | None = None,
                   count: int | None = None, **options) -> Path:
    """Write the explorer page of a run folder or zoo model `spec`; returns its path."""
    from cnnlab.run import check_output, write_atomic
    from cnnlab.viz.explore.inputs import check_files, chosen_inputs
    from cnnlab.viz.explore.page import check_language
    from cnnlab.viz.subject import open_subject

    check_language(lang)
    check_files(list(image_files))
    subject = open_subject(spec)
    path = check_output(Path(out) if out is not None else default_output(subject), force)
    images = chosen_inputs(subject, list(image_files), count)
    _, page = build_page(subject, images, lang, depth, channels, **options)
    return write_atomic(path, page)
