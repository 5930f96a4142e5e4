"""Images to network input in NumPy: resize or pad to the model's size, scale, normalise, batch."""

from __future__ import annotations

import numpy as np


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


def fit_to(images: np.ndarray, size: int) -> np.ndarray:
    """Float images of size×size: smaller square images centred with zero padding when the margin
    is even (MNIST 28 → 32, as LeCun et al. did), otherwise resized bilinearly (digits 8 → 32)."""
    h, w = images.shape[2:]
    if (h, w) == (size, size):
        return images.astype(np.float32)
    if h == w and h < size and (size - h) % 2 == 0:
        m = (size - h) // 2
        return np.pad(images.astype(np.float32), ((0, 0), (0, 0), (m, m), (m, m)))
    rows, cols = _bilinear_matrix(h, size), _bilinear_matrix(w, size)
    return (rows @ images.astype(np.float64) @ cols.T).astype(np.float32)


def prepare(images: np.ndarray, size: int, mean, std) -> np.ndarray:
    """uint8 N×C×H×W → float32 N×C×size×size, scaled to [0, 1] and normalised per channel."""
    x = fit_to(images, size) / 255.0
    mean, std = (np.asarray(v, np.float32).reshape(1, -1, 1, 1) for v in (mean, std))
    return ((x - mean) / std).astype(np.float32)


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None):
    """Index arrays covering 0..n-1 in batches; shuffled when `rng` is given."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
