"""Convolution by hand, three ways, so each can be checked against the others.

- `conv2d_naive`: one output pixel at a time, exactly the notes' O₁₁ = F₁₁X₁₁ + F₁₂X₁₂ + …
- `im2col` + one matrix multiply: the same numbers, fast (every window becomes a column).
- `conv2d_input_grad_rotated`: dL/dX as a *full* convolution of dL/dO with the kernels rotated 180°.

Like every deep-learning library, "convolution" here is cross-correlation (the kernel is not
flipped in the forward pass); the flip appears only in the input gradient.
All arrays are N×C×H×W; weights are O×C×kh×kw.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def channel_major_zeros(shape: tuple, dtype) -> np.ndarray:
    """Zeros of shape N×C×H×W stored channel by channel (C, N, H, W in memory): the layout the
    convolution's output has (O × N·OH·OW), and the one im2col reads fastest, so activations and
    gradients pass from layer to layer without transposing copies. Only the memory order differs:
    indexing is N×C×H×W as everywhere else."""
    n, c, h, w = shape
    return np.zeros((c, n, h, w), dtype).transpose(1, 0, 2, 3)


def pad(x: np.ndarray, padding: int) -> np.ndarray:
    """Zero-pad the two spatial axes by `padding` on every side."""
    if padding == 0:
        return x
    n, c, h, w = x.shape
    padded = channel_major_zeros((n, c, h + 2 * padding, w + 2 * padding), x.dtype)
    padded[:, :, padding : padding + h, padding : padding + w] = x
    return padded


def windows(xp: np.ndarray, kh: int, kw: int, stride: int) -> np.ndarray:
    """What each kernel position sees in the (already padded) input, as a view kh×kw×N×C×OH×OW:
    `windows(...)[u, v]` holds, for every output pixel, the input value under kernel entry (u, v)."""
    view = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    return view.transpose(4, 5, 0, 1, 2, 3)


def fold(window_grads: np.ndarray, padded_shape: tuple, stride: int) -> np.ndarray:
    """The adjoint of `windows`: add the gradient of every kernel position back onto the pixels
    it saw. Overlapping windows (stride < kernel) add up, which is why this is a sum, not a copy."""
    kh, kw, _, _, oh, ow = window_grads.shape
    grad = channel_major_zeros(padded_shape, window_grads.dtype)
    for u in range(kh):
        for v in range(kw):
            grad[:, :, u : u + stride * oh : stride, v : v + stride * ow : stride] += window_grads[u, v]
    return grad


def im2col(xp: np.ndarray, kh: int, kw: int, stride: int) -> np.ndarray:
    """(C·kh·kw) × (N·OH·OW): one column per output pixel, holding the input values under the
    kernel (Caffe's layout), so the convolution is one matrix product with the O × (C·kh·kw) kernels."""
    win = windows(xp, kh, kw, stride)
    _, _, n, c, oh, ow = win.shape
    return win.transpose(3, 0, 1, 2, 4, 5).reshape(c * kh * kw, n * oh * ow)


def col2im(cols: np.ndarray, padded_shape: tuple, kh: int, kw: int, stride: int) -> np.ndarray:
    """The adjoint of `im2col`: columns of gradients summed back into a padded N×C×H×W image."""
    n, c, hp, wp = padded_shape
    oh, ow = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    return fold(cols.reshape(c, kh, kw, n, oh, ow).transpose(1, 2, 3, 0, 4, 5), padded_shape, stride)


def conv2d_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """O[n,o,i,j] = b[o] + Σ_c Σ_u Σ_v F[o,c,u,v]·X[n,c,i·s+u,j·s+v], one output pixel at a time."""
    xp = pad(x, padding)
    (n, _, hp, wp), (o, _, kh, kw) = xp.shape, w.shape
    oh, ow = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    out = np.empty((n, o, oh, ow), dtype=np.result_type(x, w))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, None, :, i * stride : i * stride + kh, j * stride : j * stride + kw]  # X₁₁ X₁₂ … under F
            out[:, :, i, j] = (patch * w).sum(axis=(2, 3, 4)) + b  # F₁₁X₁₁ + F₁₂X₁₂ + …
    return out


def conv2d_weight_grad_naive(x: np.ndarray, dout: np.ndarray, kernel: tuple, stride: int = 1, padding: int = 0) -> np.ndarray:
    """dL/dF: each output pixel's gradient times the input patch that produced it, summed."""
    xp = pad(x, padding)
    kh, kw = kernel
    grad = np.zeros((dout.shape[1], x.shape[1], kh, kw), dtype=np.result_type(x, dout))
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            patch = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            grad += np.tensordot(dout[:, :, i, j], patch, axes=(0, 0))
    return grad


def conv2d_input_grad_rotated(dout: np.ndarray, w: np.ndarray, x_shape: tuple, stride: int = 1, padding: int = 0) -> np.ndarray:
    """dL/dX as the notes state it: a full convolution of dL/dO with every kernel rotated 180°.

    Two details the slogan leaves out: with stride s, dL/dO is first spread out with s-1 zeros
    between its pixels; and input and output channels swap roles (kernel for input channel c is
    w[:, c] rotated). Rows/columns of the input that no window reached get zero gradient.
    """
    n, c, h, wd = x_shape
    o, _, kh, kw = w.shape
    hp, wp = h + 2 * padding, wd + 2 * padding
    oh, ow = dout.shape[2:]
    spread = np.zeros((n, o, (oh - 1) * stride + 1, (ow - 1) * stride + 1), dtype=dout.dtype)
    spread[:, :, ::stride, ::stride] = dout
    missed_h, missed_w = hp - ((oh - 1) * stride + kh), wp - ((ow - 1) * stride + kw)
    full = np.pad(spread, ((0, 0), (0, 0), (kh - 1, kh - 1 + missed_h), (kw - 1, kw - 1 + missed_w)))
    rotated = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # C×O×kh×kw, each kernel turned 180°
    grad_padded = conv2d_naive(full, rotated, np.zeros(c, dtype=w.dtype))
    return grad_padded[:, :, padding : padding + h, padding : padding + wd]
