"""Fitting a data set's images to a model's input, the same way in training, evaluation and predict.

    uint8 batch -> float on [0, 1] -> pad or resize -> to grey (3 -> 1) -> [augment] -> normalise
    -> repeat grey to 3 channels (1 -> 3)

Spatial rule: the same size is left alone; a target at most 8 pixels larger in each dimension is
zero-padded around the image (MNIST 28 -> 32 for LeNet-5, as in the 1998 paper); anything else is a
bilinear resize, antialiased when it shrinks (e.g. 28 -> 224 for AlexNet on Fashion-MNIST, 8 -> 32 for digits).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.data.info import MAX_PAD
from cnnlab.errors import CnnlabError

GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma, as Pillow's convert("L")


class Adapter:
    """Maps a batch of native uint8 images (C0, H0, W0) to normalised float inputs (C, H, W)."""

    def __init__(self, native, target, mean, std):
        (c0, h0, w0), (c, h, w) = tuple(native), tuple(target)
        if (c0, c) not in ((1, 1), (3, 3), (1, 3), (3, 1)):
            raise CnnlabError(f"cannot feed {c0}-channel images to a model with {c} input channels (use 1 or 3)")
        self.native, self.target = (c0, h0, w0), (c, h, w)
        self.steps = []
        self.antialias = False
        dh, dw = h - h0, w - w0
        if (dh, dw) == (0, 0):
            self.pad = self.size = None
        elif 0 <= dh <= MAX_PAD and 0 <= dw <= MAX_PAD:
            self.pad, self.size = (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), None
            self.steps.append(f"zero-pad {h0}x{w0} -> {h}x{w} ({self.pad[2]}/{self.pad[3]} px top/bottom, "
                              f"{self.pad[0]}/{self.pad[1]} left/right)")
        else:
            self.pad, self.size = None, (h, w)
            self.antialias = h < h0 or w < w0  # only matters when shrinking; the plain kernel is faster
            self.steps.append(f"resize {h0}x{w0} -> {h}x{w} (bilinear{', antialias' if self.antialias else ''})")
        if (c0, c) == (3, 1):
            self.steps.append("RGB -> grey (0.299 R + 0.587 G + 0.114 B)")
        if (c0, c) == (1, 3):
            self.steps.append("grey repeated to 3 channels")
        self.mean = tuple(float(m) for m in mean)  # of the channels being normalised (before any repeat)
        self.std = tuple(float(s) for s in std)
        self._stats = {}

    @property
    def channels(self) -> int:
        """Channels seen by the augmentations (before the grey -> 3 repeat)."""
        return 1 if 1 in (self.native[0], self.target[0]) else 3

    @property
    def input_mean(self) -> tuple[float, ...]:
        return self.mean * (self.target[0] // len(self.mean))

    @property
    def input_std(self) -> tuple[float, ...]:
        return self.std * (self.target[0] // len(self.std))

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C0, H0, W0) -> float32 on [0, 1] at the target size and augmentation channels."""
        x = x.float().div_(255)
        if self.pad is not None:
            x = F.pad(x, self.pad)
        elif self.size is not None:
            x = F.interpolate(x, size=self.size, mode="bilinear", antialias=self.antialias, align_corners=False)
        if (self.native[0], self.target[0]) == (3, 1):
            x = (x * self._constants(x.device)[2]).sum(1, keepdim=True)
        return x

    def _constants(self, device) -> tuple[torch.Tensor, ...]:
        """mean, std and grey weights on `device`, copied there once (a copy per batch would make
        the host wait for the GPU at every step)."""
        if device not in self._stats:
            self._stats[device] = tuple(torch.tensor(v, device=device)[None, :, None, None]
                                        for v in (self.mean, self.std, GREY_WEIGHTS))
        return self._stats[device]

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        mean, std, _ = self._constants(x.device)
        x = (x - mean) / std
        return x.repeat(1, 3, 1, 1) if (self.native[0], self.target[0]) == (1, 3) else x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """No augmentation: what evaluation and predict feed the model."""
        return self.normalise(self.to_float(x))


def grey_stats(images_uint8: np.ndarray, max_images: int = 10000) -> tuple[tuple[float], tuple[float]]:
    """Mean and std of the luma of (up to `max_images` evenly spaced) colour training images."""
    sample = images_uint8[:: max(1, len(images_uint8) // max_images)].astype(np.float32) / 255
    grey = np.tensordot(np.asarray(GREY_WEIGHTS, np.float32), sample, axes=([0], [1]))
    return (float(grey.mean()),), (float(grey.std()),)


def load_image(path, input_shape, mean, std, native_shape=None, augment=(), invert=False) -> torch.Tensor:
    """One image file as a 1 x C x H x W float tensor, preprocessed as a run's evaluation was
    (`invert`: 255 - each pixel first, for dark-on-light files given to a light-on-dark model).

    `mean`/`std` are those the run applied per input channel (describe()["mean"], ["std"]).
    With `native_shape` (describe()["native_shape"], e.g. (1, 28, 28) for MNIST) the image is first
    brought to the data set's own size (shorter side resized, centre crop) and then adapted exactly
    as in training (pad, resize, channels).
    Otherwise (image folders) it gets the evaluation transform of the run's augmentation specs
    `augment` (`cnnlab.data.pipelines`; by default: shorter side to H * 256/224 and the centre H x W,
    or, for an image of at most 64 pixels a side, the in-memory fit).
    """
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import functional as TF

    from cnnlab.data.pipelines import folder_pipeline

    c, h, w = input_shape
    try:
        with Image.open(path) as img:
            img = img.convert("L" if (native_shape or input_shape)[0] == 1 else "RGB")
            if native_shape is not None:  # the data set's own size, aspect ratio kept by a centre crop
                x = TF.pil_to_tensor(TF.center_crop(TF.resize(img, min(native_shape[1:])), list(native_shape[1:])))
            else:
                x = folder_pipeline(augment, (h, w)).evaluate(img)
    except FileNotFoundError:
        raise CnnlabError(f"image {path} does not exist") from None
    except Image.DecompressionBombError as error:
        raise CnnlabError(f"image {path} is refused by Pillow's decompression-bomb guard ({error}); "
                          f"resize it below {2 * Image.MAX_IMAGE_PIXELS:,} pixels first") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise CnnlabError(f"cannot read image {path} ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
    if invert:
        x = 255 - x
    native_shape = tuple(native_shape or (x.shape[0], h, w))
    k = 1 if 1 in (native_shape[0], c) else 3  # channels normalised before any grey -> 3 repeat
    return Adapter(native_shape, input_shape, tuple(mean)[:k], tuple(std)[:k])(x[None])
