"""Augmentation of a whole batch on its device: random crop with zero padding, horizontal flip, and
AlexNet's PCA colour augmentation. Written by hand (not torchvision.transforms) because those work
one image at a time; here one gather or one `where` serves the batch.

Every augmentation draws its random numbers for the *global* batch (all DDP ranks together) from
the loader's generator and keeps its rank's slice, so N ranks augment exactly as one process would.
Specs are strings: "crop:4" (pad 4, crop back), "flip", "pca:0.1" (alpha ~ N(0, 0.1), the paper's).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError

NAMES = ("crop:PAD", "flip", "pca:SIGMA")


class RandomCrop:
    """Zero-pad by `pad` pixels on each side, then crop a random window of the original size."""

    def __init__(self, pad: int):
        self.pad = pad

    def __call__(self, x, g, lo, total):
        b, c, h, w = x.shape
        p = self.pad
        offsets = torch.randint(0, 2 * p + 1, (total, 2), generator=g, device=x.device)[lo:lo + b]
        padded = F.pad(x, (p, p, p, p)).view(b, c, -1)
        # one gather with flat indices into each padded image: 10x faster on CPU than 4-D indexing
        rows = offsets[:, 0, None, None] + torch.arange(h, device=x.device)[:, None]
        cols = offsets[:, 1, None, None] + torch.arange(w, device=x.device)
        index = (rows * (w + 2 * p) + cols).view(b, 1, h * w).expand(b, c, h * w)
        return padded.gather(2, index).view(b, c, h, w)

    def __str__(self):
        return f"crop:{self.pad}"


class Flip:
    """Mirror each image left-right with probability 1/2."""

    def __call__(self, x, g, lo, total):
        flip = torch.rand(total, generator=g, device=x.device)[lo:lo + len(x)] < 0.5
        return torch.where(flip[:, None, None, None], x.flip(3), x)

    def __str__(self):
        return "flip"


class PcaColour:
    """AlexNet (Krizhevsky et al. 2012, section 4.1): add sum_i alpha_i * lambda_i * p_i to every
    pixel, with p_i, lambda_i the eigenvectors and eigenvalues of the training set's RGB covariance
    (pixels on [0, 1]) and alpha_i ~ N(0, sigma) drawn once per image."""

    def __init__(self, sigma: float, eigvals: np.ndarray, eigvecs: np.ndarray):
        self.sigma, self.eigvals, self.eigvecs = sigma, eigvals, eigvecs
        self._on = {}

    @staticmethod
    def fit(images_uint8: np.ndarray, sigma: float, max_pixels: int = 2_000_000) -> "PcaColour":
        """Eigen-decompose the RGB covariance of (up to `max_pixels` evenly spaced) training pixels."""
        pixels = images_uint8.transpose(0, 2, 3, 1).reshape(-1, 3)
        pixels = pixels[:: max(1, len(pixels) // max_pixels)].astype(np.float64) / 255
        eigvals, eigvecs = np.linalg.eigh(np.cov(pixels, rowvar=False))
        return PcaColour(sigma, eigvals.astype(np.float32), eigvecs.astype(np.float32))

    def __call__(self, x, g, lo, total):
        if x.device not in self._on:
            self._on[x.device] = (torch.from_numpy(self.eigvals).to(x.device), torch.from_numpy(self.eigvecs).to(x.device))
        eigvals, eigvecs = self._on[x.device]
        alpha = torch.randn(total, 3, generator=g, device=x.device)[lo:lo + len(x)] * self.sigma
        shift = (alpha * eigvals) @ eigvecs.T  # one RGB offset per image
        return x + shift[:, :, None, None]

    def __str__(self):
        return f"pca:{self.sigma:g}"


def parse_augment(specs, channels: int, train_images: np.ndarray | None = None) -> list:
    """Augmentations from spec strings, in the order given; unknown or malformed specs are user errors."""
    augs = []
    for spec in specs:
        name, _, arg = str(spec).partition(":")
        try:
            if name == "crop":
                pad = int(arg or 4)
                if pad < 1:
                    raise ValueError
                augs.append(RandomCrop(pad))
            elif name == "flip" and not arg:
                augs.append(Flip())
            elif name == "pca":
                sigma = float(arg or 0.1)
                if sigma <= 0:
                    raise ValueError
                if channels != 3:
                    raise CnnlabError(f"augmentation {spec!r} needs colour (3-channel) images; these have {channels}")
                augs.append(PcaColour.fit(train_images, sigma))
            else:
                raise ValueError
        except ValueError:
            raise CnnlabError(f"bad augmentation {spec!r}; use any of {', '.join(NAMES)} (e.g. crop:4 flip pca:0.1)") from None
    return augs
