"""Training curves of one or more runs on one set of axes: loss, top-1 error and learning rate
against epochs (train solid, validation dashed, test dotted with markers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.run import read_metrics
from cnnlab.viz.figure import plt, save

STYLE = {"train": dict(ls="-"), "val": dict(ls="--"), "test": dict(ls=":", marker="o", ms=4)}


def series(records: list[dict], split: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of `key` for `split`: the last record of each epoch (a resumed run may
    repeat one), in epoch order."""
    last = {r["epoch"]: r[key] for r in records if r.get("split") == split and r.get(key) is not None and "epoch" in r}
    epochs = sorted(last)
    return np.asarray(epochs, dtype=float), np.asarray([last[e] for e in epochs], dtype=float)


def plot_curves(runs: list[str | Path], out_path: str | Path):
    """Returns (png path, {run label: {(split, key): (epochs, values)}})."""
    panels = [("loss", "loss", lambda v: v), ("top1", "top-1 error (%)", lambda v: 100 * (1 - v)),
              ("lr", "learning rate", lambda v: v)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn: dict[str, dict] = {}
    for i, run in enumerate(runs):
        records = read_metrics(run)
        if not records:
            raise CnnlabError(f"{run} has no metrics yet (metrics.jsonl is empty or missing)")
        label = _unique(Path(run).resolve().name, drawn)
        drawn[label] = {}
        for ax, (key, _, transform) in zip(axes, panels):
            for split, style in STYLE.items():
                if key == "lr" and split != "train":
                    continue
                epochs, values = series(records, split, key)
                if len(epochs):
                    drawn[label][(split, key)] = (epochs, transform(values))
                    # one epoch is one point: a line of one point would be invisible
                    shape = {**style, "marker": "o", "ms": 6} if len(epochs) == 1 else style
                    ax.plot(epochs, transform(values), color=colours[i % len(colours)], **shape,
                            label=f"{label} {split}")
    for ax, (key, name, _) in zip(axes, panels):
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        values = np.concatenate([v for d in drawn.values() for (s, k), (_, v) in d.items() if k == key] or [np.ones(1)])
        if key == "lr" and values.min() > 0 and values.max() / values.min() > 20:
            ax.set_yscale("log")
    handles, labels = axes[0].get_legend_handles_labels()
    # legend columns fill top to bottom: one column per run (its train, val, test), or one row for a single run
    ncols = len(labels) if len(runs) == 1 else min(len(runs), 4)
    legend_in = 0.25 * -(-len(labels) // max(ncols, 1))
    fig.set_figheight(fig.get_figheight() + legend_in)
    # margins by arithmetic: a layout engine costs more than the drawing (the report runs after every training)
    fig.subplots_adjust(left=0.055, right=0.99, top=1 - 0.4 / fig.get_figheight(),
                        bottom=(0.75 + legend_in) / fig.get_figheight(), wspace=0.22)
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.02), ncols=ncols, frameon=False)
    return save(fig, out_path), drawn


def _unique(label: str, taken: dict) -> str:
    n, candidate = 2, label
    while candidate in taken:
        candidate, n = f"{label} ({n})", n + 1
    return candidate
