"""Shared drawing: one look for every cnnlab figure, and the labelled tile grid most of them use.

A tile grid is composed into ONE image array (tiles separated by blank gaps, a label strip above
each tile) and drawn with a single `imshow`: much faster than one axes per tile (the report runs
after every training), and the composed array is exactly what is on screen, so tests can check it.
"""

from __future__ import annotations

import math
import os
import textwrap
from contextvars import ContextVar
from pathlib import Path

import matplotlib

if not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")  # files only: no display needed, ever

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 100  # figures are sized in inches for reading at 100 % zoom
FONT = 11  # points: body text, tick labels
TILE_FONT = 9  # points: labels over grid tiles
RED = "#b00000"  # what a reader must not miss: an empty map, a flagged method

plt.rcParams.update(
    {
        "font.size": FONT,
        "axes.titlesize": FONT + 1,
        "axes.labelsize": FONT,
        "legend.fontsize": FONT - 1,
        "figure.titlesize": FONT + 3,
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


# Whether figures may replace existing files: `cnnlab viz --force` turns it on for one command.
replace_existing: ContextVar[bool] = ContextVar("replace_existing", default=False)


def save(fig, path: str | os.PathLike) -> Path:
    """Write `fig` atomically (PNG, or the format of the suffix) and close it, so long loops
    never leak figures. An existing file is replaced only under `replace_existing`, and never a
    run's own files."""
    return save_all(fig, [path])[0]


def save_all(fig, paths) -> list[Path]:
    """`save` into several files (e.g. .png and .svg of one drawing); all are checked first."""
    from cnnlab.run import check_output, write_atomic

    try:
        checked = [check_output(path, force=replace_existing.get()) for path in paths]
        return [write_atomic(path, lambda tmp: fig.savefig(tmp, facecolor="white")) for path in checked]
    finally:
        plt.close(fig)


def compose_grid(tiles: np.ndarray, ncols: int, gap: int, strip: int, background=np.nan) -> np.ndarray:
    """Tiles (N, h, w[, 3]) laid out row-major in `ncols` columns; `gap` blank pixels between
    tiles, plus a `strip` of blank pixels above each tile for its label. Blanks hold `background`
    (NaN for maps, so the colour map leaves them white)."""
    n, h, w = tiles.shape[:3]
    nrows = math.ceil(n / ncols)
    cell_h, cell_w = strip + h + gap, w + gap
    grid = np.full((nrows * cell_h, ncols * cell_w - gap, *tiles.shape[3:]), background, dtype=np.float64)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        top, left = r * cell_h + strip, c * cell_w
        grid[top : top + h, left : left + w] = tile
    return grid


def tile_origin(i: int, ncols: int, shape: tuple[int, int], gap: int, strip: int) -> tuple[int, int]:
    """(row, col) of tile `i`'s top-left pixel in `compose_grid`'s output."""
    h, w = shape
    r, c = divmod(i, ncols)
    return r * (strip + h + gap) + strip, c * (w + gap)


def tidy_columns(n: int) -> int:
    """Columns for n tiles: a roughly square grid with the fewest empty places (64 -> 8, 96 -> 12)."""
    low, high = math.ceil(math.sqrt(n)), math.ceil(math.sqrt(2 * n))
    return min(range(low, high + 1), key=lambda c: (math.ceil(n / c) * c - n, c))


def tile_figure(
    tiles: np.ndarray,
    labels: list[str],
    title: str,
    *,
    ncols: int | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: str | None = None,
    tile_inches: float | None = None,
    label_colors: list[str] | None = None,
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    caption: str = "",
    caption_color: str = "black",
):
    """A figure showing `tiles` (N, h, w) maps or (N, h, w, 3) RGB in [0, 1], each labelled.

    Returns (figure, composed grid, ncols). Tiles are drawn big enough to read at 100 % zoom and
    the label strip is sized from the label font, whatever the tile's pixel size. `row_labels` and
    `col_labels` label a matrix of tiles at its edges instead of tile by tile. The colour bar
    shows `cmap` on [vmin, vmax] (for RGB tiles too: heat maps laid over images); `caption` is
    wrapped below the grid.
    """
    n, h, w = tiles.shape[:3]
    ncols = ncols or tidy_columns(n)
    if tile_inches is None:
        tile_inches = min(float(np.clip(11.0 / ncols, 0.6, 1.6)), max(0.5, 0.15 * max(h, w)))
    inch_per_px = tile_inches / max(h, w)
    gap = max(1, math.ceil(0.06 * tile_inches / inch_per_px))
    lines = max((label.count("\n") + 1 for label in labels), default=0)
    strip = math.ceil((lines * TILE_FONT * 1.35 / 72 + 0.04) / inch_per_px) if labels else 0
    background = 1.0 if tiles.ndim == 4 else np.nan
    grid = compose_grid(tiles, ncols, gap, strip, background)

    title_in = 0.45 + 0.22 * title.count("\n") + (0.25 if col_labels else 0.0)
    margin_in, bar_in, rows_in = 0.15, (0.9 if colorbar else 0.0), (0.5 if row_labels else 0.0)
    grid_w_in, grid_h_in = grid.shape[1] * inch_per_px, grid.shape[0] * inch_per_px
    title_w_in = max(len(line) for line in title.split("\n")) * (FONT + 3) * 0.6 / 72 + 0.4
    fig_w = max(grid_w_in + 2 * margin_in + bar_in + rows_in, title_w_in, 4.0)
    caption = "\n".join(textwrap.fill(line, int(fig_w * 72 / (FONT * 0.6))) for line in caption.splitlines())
    caption_in = (caption.count("\n") + 1) * FONT * 1.3 / 72 + 0.1 if caption else 0.0
    fig_h = grid_h_in + title_in + margin_in + caption_in
    fig = plt.figure(figsize=(fig_w, fig_h))
    left = (fig_w - grid_w_in - bar_in + rows_in) / 2
    bottom = margin_in + caption_in
    ax = fig.add_axes([left / fig_w, bottom / fig_h, grid_w_in / fig_w, grid_h_in / fig_h])
    colormap = matplotlib.colormaps[cmap].with_extremes(bad="white")
    # "auto": nearest when a pixel becomes a block (small kernels), a smoothing filter when large
    # maps are shrunk (where nearest would alias)
    image = ax.imshow(grid, cmap=colormap, vmin=vmin, vmax=vmax, interpolation="auto", aspect="equal")
    ax.set_axis_off()
    for i, label in enumerate(labels):
        top, left_px = tile_origin(i, ncols, (h, w), gap, strip)
        color = label_colors[i] if label_colors else "black"
        ax.text(left_px + (w - 1) / 2, top - 0.5 - strip * 0.1, label, ha="center", va="bottom", fontsize=TILE_FONT, color=color, clip_on=False)
    for c, label in enumerate(col_labels or []):
        ax.text(c * (w + gap) + (w - 1) / 2, -0.5 - gap, label, ha="center", va="bottom", fontsize=TILE_FONT, clip_on=False)
    for r, label in enumerate(row_labels or []):
        ax.text(-0.5 - gap, r * (h + gap) + (h - 1) / 2, label, ha="right", va="center", fontsize=TILE_FONT, clip_on=False)
    fig.suptitle(title, y=1 - 0.12 / fig_h, va="top")
    if caption:
        fig.text(0.5, 0.1 / fig_h, caption, ha="center", va="bottom", color=caption_color)
    if colorbar:
        bar_h = min(grid_h_in, 4.0)
        cax = fig.add_axes([(left + grid_w_in + 0.15) / fig_w, (bottom + grid_h_in - bar_h) / fig_h, 0.15 / fig_w,
                            bar_h / fig_h])
        scale = image if tiles.ndim == 3 else matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(vmin, vmax), cmap)
        fig.colorbar(scale, cax=cax, label=colorbar)
    return fig, grid, ncols


def display_image(x, mean, std) -> np.ndarray:
    """A preprocessed 1×C×H×W (or C×H×W) tensor back to an H×W (grey) or H×W×3 array in [0, 1]."""
    x = x.detach().cpu().float().reshape(-1, *x.shape[-2:]).numpy()
    mean = np.asarray(mean, dtype=np.float64).reshape(-1, 1, 1)
    std = np.asarray(std, dtype=np.float64).reshape(-1, 1, 1)
    image = np.clip(x * std + mean, 0.0, 1.0)
    return image[0] if image.shape[0] == 1 else np.moveaxis(image[:3], 0, -1)


def overlay(image: np.ndarray, heat: np.ndarray, top: float, cmap: str = "jet") -> np.ndarray:
    """`heat` (H x W, >= 0) over a grey copy of `image`, as an H x W x 3 RGB array: colour from
    the map on [0, top], opacity rising with the value, so the image stays visible where the map
    is zero (and an empty map leaves the grey image)."""
    grey = image if image.ndim == 2 else image.mean(-1)
    level = np.clip(heat / (top or 1.0), 0, 1)
    colour = matplotlib.colormaps[cmap](level)[..., :3]
    alpha = (0.15 + 0.6 * level)[..., None] * (level[..., None] > 0)
    return grey[..., None] * (1 - alpha) + colour * alpha


def rgb(image: np.ndarray) -> np.ndarray:
    """An H x W grey or H x W x 3 image as H x W x 3 (tiles of one grid share a shape)."""
    return np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image


def pad_row(tiles: list, labels: list, colours: list, ncols: int) -> None:
    """Blank (white) tiles up to the end of the row, so the next row starts on its own."""
    while len(tiles) % ncols:
        tiles.append(np.ones_like(tiles[0]))
        labels.append("")
        colours.append("black")
