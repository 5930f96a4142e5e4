"""A diagram of a model's layer stack, drawn from the analyzer's rows: one block per layer,
left to right and wrapped into lines, sized by its output (height: spatial size, width:
channels, both on a square-root / log scale so LeNet and VGG both fit), labelled with the layer's
name, kernel and output shape — in the spirit of the papers' figures.

Activations, dropout, batch norm and reshapes are not drawn as blocks (they do not change the
shape); deep models are folded block by block (the analyzer's `Summary.fold`) until at most
MAX_BLOCKS remain, so a ResNet shows its residual blocks rather than 150 convolutions.
"""

from __future__ import annotations

import math

from matplotlib.patches import FancyArrowPatch, Rectangle

from cnnlab.viz.figure import plt, save

MAX_BLOCKS = 40
PER_LINE = 8
HIDDEN = {"ReLU", "ReLU6", "Tanh", "Sigmoid", "ScaledTanh", "Dropout", "Dropout2d", "BatchNorm2d", "BatchNorm1d",
          "flatten", "Flatten", "view", "reshape", "Identity", "relu", "dropout", "getitem", "size"}
COLOURS = {"conv": "#4C72B0", "pool": "#DD8452", "linear": "#55A868", "norm": "#8172B3", "block": "#64B5CD", "other": "#999999"}


def drawn_rows(rows) -> list:
    return [row for row in rows if row.type not in HIDDEN]


def fold_to_fit(s):
    """The least folded view of summary `s` with at most MAX_BLOCKS drawn rows."""
    for depth in (None, 4, 3, 2, 1):
        folded = s.fold(depth)
        if len(drawn_rows(folded.rows)) <= MAX_BLOCKS:
            return folded
    return s.fold(1)


def kind(row) -> str:
    t = row.type.lower()
    if row.folded > 1:
        return "block"
    for key, words in (("conv", ("conv",)), ("pool", ("pool", "subsampling")), ("linear", ("linear", "rbf")),
                       ("norm", ("norm",))):
        if any(w in t for w in words):
            return key
    return "other"


def describe(row) -> str:
    """Second label line: kernel/stride for windows, units for linear layers, the fold count."""
    if row.folded > 1:
        return f"{row.type} block"
    if row.windows:
        k = "x".join(str(w.kernel) for w in row.windows)
        s = row.windows[0].stride
        return f"{row.type} {k}" + (f" /{s}" if s != 1 else "") + (f", {row.groups} groups" if row.groups > 1 else "")
    return row.type


def shape_text(shape) -> str:
    if len(shape) == 3:
        return f"{shape[0]}@{shape[1]}x{shape[2]}"
    if len(shape) == 1:
        return f"{shape[0]:,} units"
    return "x".join(map(str, shape))


def plot_architecture(model_or_name, input_shape, out_path, title: str | None = None):
    """Returns (png path, the rows drawn)."""
    from cnnlab.analysis import summary
    from cnnlab.analysis.formatters import params_text

    s = fold_to_fit(summary(model_or_name, input_shape))
    rows = drawn_rows(s.rows)
    shapes = [tuple(s.input_shape)] + [tuple(r.output_shape) for r in rows]
    max_hw = max((sh[-1] for sh in shapes if len(sh) == 3), default=1)
    max_c = max(sh[0] for sh in shapes)
    lines = math.ceil(len(shapes) / PER_LINE)
    cell_w, cell_h = 1.65, 2.35
    fig = plt.figure(figsize=(cell_w * min(len(shapes), PER_LINE) + 0.4, cell_h * lines + 0.9))
    ax = fig.add_axes([0, 0, 1, 1 - 0.8 / fig.get_figheight()])
    ax.set_xlim(-0.2, cell_w * min(len(shapes), PER_LINE) + 0.2)
    ax.set_ylim(-cell_h * lines, 0)
    ax.set_axis_off()
    labels = [("input", "", shapes[0], "other")] + [(r.name, describe(r), r.output_shape, kind(r)) for r in rows]
    previous = None
    for i, (name, what, shape, k) in enumerate(labels):
        line, col = divmod(i, PER_LINE)
        cx, cy = cell_w * col + cell_w / 2, -cell_h * line - cell_h / 2
        height = 0.25 + 1.05 * math.sqrt(shape[-1] / max_hw) if len(shape) == 3 else 1.2
        width = 0.12 + 0.7 * math.log2(1 + shape[0]) / math.log2(1 + max_c) if len(shape) == 3 else 0.1
        ax.add_patch(Rectangle((cx - width / 2, cy - height / 2), width, height, facecolor=COLOURS[k], alpha=0.85,
                               edgecolor="black", linewidth=0.8))
        ax.text(cx, cy + 0.7, _short(name.split(".")[-1] if len(name) > 14 else name), ha="center", va="bottom",
                fontsize=9, weight="bold")
        ax.text(cx, cy - 0.7, f"{_short(what, 22)}\n{shape_text(shape)}", ha="center", va="top", fontsize=8.5)
        if previous is not None and previous[1] == cy:
            ax.add_patch(FancyArrowPatch((previous[0] + 0.42, cy), (cx - 0.42, cy), arrowstyle="-|>",
                                         mutation_scale=10, color="#444444"))
        previous = (cx, cy)
    totals = s.totals
    fig.suptitle(f"{title or s.model}: input {shape_text(s.input_shape)}, parameters {params_text(totals)}, "
                 f"{totals.macs:,} MACs per image", y=1 - 0.15 / fig.get_figheight(), va="top")
    return save(fig, out_path), rows


def _short(text: str, width: int = 16) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
