"""The kernels of a convolution layer as a picture.

The first layer of a colour model is drawn in colour: each kernel's three input channels become
one RGB tile, normalised jointly over the whole layer as 0.5 + W / (2 max|W|), so zero is mid
grey and colours of different kernels compare. Every other layer (and grey first layers) is drawn
channel by channel: one tile per (output filter, input channel) pair on a shared symmetric scale
[-max|W|, +max|W|] with a colour bar, so tiles compare across the layer too.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.viz.figure import save, tile_figure
from cnnlab.viz.subject import Subject, conv_layers, resolve_layer_name

MAX_INPUTS = 16  # input channels shown per filter in a per-channel grid


def colour_tiles(weight: np.ndarray) -> np.ndarray:
    """(O, 3, kh, kw) weights -> (O, kh, kw, 3) RGB tiles in [0, 1]: 0.5 + W / (2 max|W|)."""
    scale = np.abs(weight).max()
    tiles = 0.5 + weight / (2 * scale) if scale > 0 else np.full_like(weight, 0.5)
    return np.moveaxis(tiles, 1, -1)


def channel_tiles(weight: np.ndarray, max_filters: int, max_inputs: int = MAX_INPUTS) -> np.ndarray:
    """(O, I, kh, kw) weights -> the first max_filters x max_inputs kernels as (rows*cols, kh, kw)."""
    shown = weight[:max_filters, :max_inputs]
    return shown.reshape(-1, *shown.shape[2:])


def plot_filters(subject: Subject, out_dir, layer: str | None = None, max_filters: int | None = None):
    """Draw one conv layer's kernels; returns (png path, the tiles drawn, in grid order)."""
    convs = conv_layers(subject.model)
    if not convs:
        raise CnnlabError(f"{subject.name} has no convolution layers to draw")
    name = resolve_layer_name(subject.model, layer) if layer else convs[0]
    conv = dict(subject.model.named_modules())[name]
    if not isinstance(conv, nn.Conv2d):
        raise CnnlabError(f"layer '{name}' is a {type(conv).__name__}, not a convolution; choose one of: {', '.join(convs)}")
    weight = conv.weight.detach().cpu().double().numpy()
    out_ch, in_ch, kh, kw = weight.shape
    scale = float(np.abs(weight).max())
    title = f"{subject.title}: {name} kernels, {out_ch} x {in_ch} x {kh}x{kw}"
    if name == convs[0] and in_ch == 3:
        count = min(out_ch, max_filters or 96)
        tiles = colour_tiles(weight)[:count]
        fig, _, _ = tile_figure(tiles, [str(i) for i in range(count)],
                                   title + f"\nRGB, jointly normalised: 0.5 + W / (2 x {scale:.3g})")
    else:
        rows = min(out_ch, max_filters or (64 if in_ch == 1 else 16))
        cols = min(in_ch, MAX_INPUTS)
        tiles = channel_tiles(weight, rows, cols)
        shared = dict(cmap="RdBu_r", vmin=-scale, vmax=scale, colorbar="weight")
        if cols == 1:  # one input channel: one labelled tile per filter
            fig, _, _ = tile_figure(tiles, [str(o) for o in range(rows)], title, **shared)
        else:  # a matrix: rows are filters, columns their input channels
            if (rows, cols) != (out_ch, in_ch):
                title += f"\nfirst {rows} filters x first {cols} input channels"
            fig, _, _ = tile_figure(tiles, [], title, ncols=cols, row_labels=[f"out {o}" for o in range(rows)],
                                       col_labels=[f"in {i}" for i in range(cols)], **shared)
    return save(fig, out_dir / f"filters-{name}.png"), tiles
