"""The confusion matrix and the misclassified test images of a run."""

from __future__ import annotations

import numpy as np

from cnnlab.run.predictions import Predictions
from cnnlab.viz.figure import plt, save, tile_figure
from cnnlab.viz.predictions import TestImages
from cnnlab.viz.subject import Subject

NUMBERED_UP_TO = 20  # classes: above this the cells are too small for their counts


def plot_confusion(subject: Subject, predictions: Predictions, out_dir):
    """Counts in the cells, colour by the fraction of the true class (row), so a rare class's
    errors show as clearly as a common one's. Returns (png path, count matrix)."""
    counts = predictions.confusion(len(subject.classes))
    k = len(counts)
    fractions = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    side = float(np.clip(0.55 * k + 2.5, 5.0, 14.0))
    names = subject.classes[:k]
    long_names = max(map(len, names)) > 2
    label_in = 0.55 + (0.45 * 0.075 * max(map(len, names)) if long_names else 0.0)  # room for rotated names
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    # margins by arithmetic: a layout engine costs more than the drawing (the report runs after every training)
    fig.subplots_adjust(left=(0.35 + label_in) / (side + 1.2), right=1 - 1.3 / (side + 1.2),
                        bottom=(0.35 + label_in) / side, top=1 - 0.75 / side)
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    ax.spines[:].set_visible(True)
    ax.set_xticks(range(k), names, rotation=45 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= NUMBERED_UP_TO:
        for (i, j), n in np.ndenumerate(counts):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=9 if k > 12 else 10,
                        color="white" if fractions[i, j] > 0.5 else "black")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"{subject.title}\ntest set: {counts.sum():,} images, top-1 accuracy {accuracy:.2%}")
    box = ax.get_position()
    cax = fig.add_axes([box.x1 + 0.25 / fig.get_figwidth(), box.y0 + 0.1 * box.height, 0.2 / fig.get_figwidth(),
                        0.8 * box.height])
    fig.colorbar(image, cax=cax, label="fraction of the true class")
    return save(fig, out_dir / "confusion.png"), counts


def plot_mistakes(subject: Subject, test: TestImages, out_dir, count: int = 32):
    """The `count` most confident mistakes, as stored in the data set, with true and predicted
    class. Returns (png path, indices into the test set)."""
    predictions = test.predictions
    wrong = np.flatnonzero(predictions.predicted != predictions.labels)
    confidence = predictions.confidence[wrong]
    chosen = wrong[np.argsort(-confidence, kind="stable")[:count]]
    title = f"{subject.title}\n{len(wrong):,} of {len(predictions.labels):,} test images misclassified"
    if not len(chosen):
        fig = plt.figure(figsize=(6, 1.5))
        fig.text(0.5, 0.5, title + ": none", ha="center", va="center")
        return save(fig, out_dir / "mistakes.png"), chosen
    images = test.images[chosen].astype(np.float64) / 255
    tiles = images[:, 0] if images.shape[1] == 1 else np.moveaxis(images, 1, -1)
    labels = [f"true: {_short(subject.classes[predictions.labels[i]])}\n"
              f"pred: {_short(subject.classes[predictions.predicted[i]])}\np = {predictions.confidence[i]:.2f}"
              for i in chosen]
    fig, _, _ = tile_figure(tiles, labels, title + ", most confident first", ncols=min(8, len(chosen)),
                            cmap="gray", vmin=0, vmax=1, tile_inches=1.4)
    return save(fig, out_dir / "mistakes.png"), chosen


def _short(name: str, width: int = 11) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"
