"""Normalisation layers: batch normalisation (Ioffe & Szegedy 2015) and AlexNet's local response
normalisation (Krizhevsky et al. 2012). The derivations of both backward passes are written out
in docs/scratch.md."""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.scratch.layers import Buffer, Layer, Parameter, expect_shape


def _per_channel(v: np.ndarray) -> np.ndarray:
    """A length-C vector shaped to broadcast over N×C×H×W."""
    return v.reshape(1, -1, 1, 1)


class BatchNorm2d(Layer):
    """y = γ·x̂ + β with x̂ = (x − μ)/√(σ² + ε), per channel over N, H and W.

    Training: μ and σ² are the batch's (σ² biased), and the running statistics move towards them,
    r ← (1 − m)·r + m·batch value, the variance's with the unbiased estimate (torch's convention).
    Evaluation: μ and σ² are the running statistics, so y is a fixed affine map of x.
    """

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        self.channels, self.eps, self.momentum = channels, eps, momentum
        self.weight = Parameter(np.ones(channels, np.float32))  # γ
        self.bias = Parameter(np.zeros(channels, np.float32))  # β
        self.running_mean = Buffer(np.zeros(channels, np.float32))
        self.running_var = Buffer(np.ones(channels, np.float32))
        self.num_batches_tracked = Buffer(np.array(0, np.int64))

    def forward(self, x):
        expect_shape(x, 4, 1, self.channels, f"BatchNorm2d({self.channels})")
        self._batch_statistics = self.training
        if self.training:
            if x.size == self.channels:
                raise CnnlabError(f"BatchNorm2d needs more than one value per channel to train, not input of shape "
                                  f"{'×'.join(map(str, x.shape))}: use a larger batch or image")
            mean = x.mean(axis=(0, 2, 3))
            centred = x - _per_channel(mean)
            var = (centred * centred).mean(axis=(0, 2, 3))
            self._update_running_statistics(mean, var, x.size // self.channels)
        else:
            mean, var = self.running_mean.data, self.running_var.data
            centred = x - _per_channel(mean)
        self._inv_std = 1.0 / np.sqrt(var + self.eps)
        self._xhat = centred * _per_channel(self._inv_std)
        return self._xhat * _per_channel(self.weight.data) + _per_channel(self.bias.data)

    def _update_running_statistics(self, mean, var, m: int) -> None:
        r_mean, r_var, m_ = self.running_mean, self.running_var, self.momentum
        r_mean.data = ((1 - m_) * r_mean.data + m_ * mean).astype(r_mean.data.dtype)
        r_var.data = ((1 - m_) * r_var.data + m_ * var * m / (m - 1)).astype(r_var.data.dtype)
        self.num_batches_tracked.data = self.num_batches_tracked.data + 1

    def backward(self, dout):
        self.bias.grad = dout.sum(axis=(0, 2, 3))  # dL/dβ = Σ dy
        self.weight.grad = (dout * self._xhat).sum(axis=(0, 2, 3))  # dL/dγ = Σ dy·x̂
        scale = _per_channel(self.weight.data * self._inv_std)  # γ/√(σ² + ε)
        if not self._batch_statistics:
            return dout * scale  # μ and σ² are constants: y is affine in x
        # μ and σ² depend on every x of the channel; over its m values (docs/scratch.md, line by line):
        # dL/dx = γ/√(σ²+ε) · (dy − mean(dy) − x̂·mean(dy·x̂)), with mean(dy) = dL/dβ / m, mean(dy·x̂) = dL/dγ / m
        m = dout.size // self.channels
        return scale * (dout - _per_channel(self.bias.grad / m) - self._xhat * _per_channel(self.weight.grad / m))


class LocalResponseNorm(Layer):
    """Normalisation across channels: b_c = a_c / (k + α' · Σ_{c' near c} a_{c'}²)^β.

    `formula="torch"` (the default, as torch and Caffe): α' = α/n, the window c − ⌊n/2⌋ … c + ⌊(n−1)/2⌋.
    `formula="paper"` (Krizhevsky et al. 2012, §3.3): α' = α, the window c − ⌊n/2⌋ … c + ⌊n/2⌋.
    For AlexNet's n = 5 the windows agree, and the paper's α = 1e-4 is torch's α = 5e-4.
    Channels past the first or last are missing from the sum (they count as zero).
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0, formula="torch"):
        if formula not in ("torch", "paper"):
            raise ValueError(f"formula must be 'torch' or 'paper', not {formula!r}")
        self.size, self.alpha, self.beta, self.k, self.formula = size, alpha, beta, k, formula
        self._scaled_alpha = alpha / size if formula == "torch" else alpha
        self._before, self._after = size // 2, (size - 1) // 2 if formula == "torch" else size // 2

    @staticmethod
    def _window_sum(v, before, after):
        """Σ of v over channels c-before … c+after (missing channels count as zero)."""
        padded = np.pad(v, ((0, 0), (before, after), (0, 0), (0, 0)))
        return sum(padded[:, i : i + v.shape[1]] for i in range(before + after + 1))

    def forward(self, x):
        self._x = x
        self._d = self.k + self._scaled_alpha * self._window_sum(x * x, self._before, self._after)
        return x * self._d**-self.beta

    def backward(self, dout):
        x, d = self._x, self._d
        # channel j feeds the denominators of channels j-after … j+before (the window, mirrored)
        feedback = self._window_sum(dout * x * d ** (-self.beta - 1), self._after, self._before)
        return dout * d**-self.beta - 2 * self._scaled_alpha * self.beta * x * feedback
