"""Losses: each returns (loss, dL/d input), so the backward pass starts right where it ends.

One rule for all: a loss per example, averaged over the batch (Caffe's convention, which the
notes' list of losses comes from). The torch equivalent is named in each docstring.
"""

from __future__ import annotations

import numpy as np


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Multinomial logistic loss −log softmax(z)[y], N×K logits, N integer labels.
    = torch.nn.functional.cross_entropy(z, y). Gradient: (softmax(z) − onehot(y)) / N."""
    n = len(labels)
    shifted = logits - logits.max(axis=1, keepdims=True)  # same softmax, no overflow
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    grad = np.exp(log_probs)
    grad[np.arange(n), labels] -= 1.0
    return float(-log_probs[np.arange(n), labels].mean()), grad / n


def pixelwise_softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """The notes' segmentation loss: softmax cross-entropy at every pixel, summed over the image,
    averaged over images. N×K×H×W logits, N×H×W labels.
    = torch.nn.functional.cross_entropy(z, y, reduction="sum") / N."""
    n, k, h, w = logits.shape
    per_pixel = logits.transpose(0, 2, 3, 1).reshape(-1, k)  # every pixel is one K-way decision
    loss, grad = softmax_cross_entropy(per_pixel, labels.reshape(-1))
    pixels = h * w  # mean over N·H·W pixels, times H·W = sum per image, mean over images
    return loss * pixels, (grad * pixels).reshape(n, h, w, k).transpose(0, 3, 1, 2)


def sigmoid_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """K independent probabilities per example: −Σ_k [t log σ(z) + (1−t) log(1−σ(z))], mean over N.
    = torch.nn.functional.binary_cross_entropy_with_logits(z, t, reduction="sum") / N."""
    n = len(logits)
    loss = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))  # stable form
    sigmoid = 0.5 * (1.0 + np.tanh(0.5 * logits))
    return float(loss.sum() / n), (sigmoid - targets) / n


def euclidean(predictions: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Regression: ½‖ŷ − y‖² per example, mean over N (Caffe's EuclideanLoss).
    = torch.nn.functional.mse_loss(ŷ, y, reduction="sum") / (2N)."""
    n = len(predictions)
    diff = predictions - targets
    return float(0.5 * (diff * diff).sum() / n), diff / n
