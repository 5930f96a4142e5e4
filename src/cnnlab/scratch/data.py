"""Images to network input in NumPy: resize or pad to the model's size, scale, normalise, batch."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """n_out × n_in weights of 1-D linear interpolation, pixel centres aligned
    (torch's interpolate(mode="bilinear", align_corners=False))."""
    source = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    left = np.floor(source).astype(int)
    right = np.minimum(left + 1, n_in - 1)
    weights = np.zeros((n_out, n_in))
    np.add.at(weights, (np.arange(n_out), left), 1 - (source - left))
    np.add.at(weights, (np.arange(n_out), right), source - left)
    return weights


MAX_PAD = 8  # the rule of cnnlab.data.preprocess (torch-based, so restated here in NumPy)


def _pads(h: int, w: int, size: int) -> bool:
    return 0 <= size - h <= MAX_PAD and 0 <= size - w <= MAX_PAD


def fit_description(native_hw: tuple, size: int) -> str:
    h, w = native_hw
    if (h, w) == (size, size):
        return "none"
    return f"{'zero-pad' if _pads(h, w, size) else 'bilinear resize'} {h}x{w} -> {size}x{size}"


def fit_to(images: np.ndarray, size: int) -> np.ndarray:
    """Float images of size×size, as cnnlab's trainer fits them: a target at most 8 pixels larger is
    reached by zero padding around the image (MNIST 28 → 32, as LeCun et al. did), anything else by
    a bilinear resize (digits 8 → 32)."""
    h, w = images.shape[2:]
    x = images.astype(np.float32)
    if (h, w) == (size, size):
        return x
    if _pads(h, w, size):
        dh, dw = size - h, size - w
        return np.pad(x, ((0, 0), (0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))
    if h > size or w > size:
        raise ValueError(f"{h}×{w} images would have to shrink to {size}×{size}; the scratch engine only enlarges")
    rows, cols = _bilinear_matrix(h, size), _bilinear_matrix(w, size)
    return (rows @ images.astype(np.float64) @ cols.T).astype(np.float32)


def prepare(images: np.ndarray, size: int, mean, std) -> np.ndarray:
    """uint8 N×C×H×W → float32 N×C×size×size, scaled to [0, 1] and normalised per channel."""
    x = fit_to(images, size) / 255.0
    mean, std = (np.asarray(v, np.float32).reshape(1, -1, 1, 1) for v in (mean, std))
    return ((x - mean) / std).astype(np.float32)


def random_shift(x: np.ndarray, pixels: int, rng: np.random.Generator, fill: str | float = "edge") -> np.ndarray:
    """Every image moved by its own random offset of up to ±`pixels` in each direction: the
    cheapest augmentation, and it teaches tolerance to position. The gap is filled with the
    repeated border (`fill="edge"`), or with a constant: 0 on normalised images is the main
    trainer's `crop:PAD` (the paper's padded crops for CIFAR-10)."""
    n, _, h, w = x.shape
    margins = ((0, 0), (0, 0), (pixels, pixels), (pixels, pixels))
    padded = np.pad(x, margins, mode="edge") if fill == "edge" else np.pad(x, margins, constant_values=fill)
    dy, dx = rng.integers(0, 2 * pixels + 1, size=(2, n))
    return sliding_window_view(padded, (h, w), axis=(2, 3))[np.arange(n), :, dy, dx]


def random_flip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image mirrored left-right with probability 1/2 (the main trainer's `flip`)."""
    flip = rng.random(len(x)) < 0.5
    return np.where(flip[:, None, None, None], x[..., ::-1], x)


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None):
    """Index arrays covering 0..n-1 in batches; shuffled when `rng` is given."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
