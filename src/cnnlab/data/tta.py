"""Test-time augmentation: several views of each test image, their softmax outputs averaged.

    flip     the evaluation image and its mirror (2 views)
    10crop   the four corner crops and the centre crop, and their mirrors (10 views; Krizhevsky et al.
             2012, section 4.1: "the four corner patches and the center patch as well as their
             horizontal reflections ... averaging the predictions made by the network's softmax layer")
    144crop  GoogLeNet's (Szegedy et al. 2014, section 7): shorter side to 4 scales (256, 288, 320 and
             352 for a 224 input), the left, centre and right square (top, centre, bottom for portraits),
             from each the 4 corner and the centre crops and the square resized to the input, and all
             their mirrors: 4 · 3 · 6 · 2 = 144 views. Image folders only.

Image folders take the views from the evaluation image before its final centre crop (with AlexNet's
pipeline: the corners of the central 256×256), with torchvision's `five_crop` and each crop mirrored.
Not its `TenCrop`: that mirrors the whole image and crops it again, and where the margin is odd
((256 − 227)/2 = 14.5) its mirrored centre patch sits one pixel off the centre patch's mirror. The
144 crops are hand-written (torchvision has no such transform). The in-memory data sets keep the images on the
device: their 10 crops come from the image zero-padded by the training crop's P pixels (`crop:P`),
cut by slicing the whole batch at once.

A loader with views yields each image's views one after the other (batch of B·V); `ViewAverage`
wraps the model so that it returns one row per image: the log of the mean softmax, so a caller's
cross-entropy is −log of the averaged probability of the true class and its top-k ranks the
averaged probabilities, as the papers score them.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from cnnlab.errors import CnnlabError

VIEWS = {"flip": 2, "10crop": 10, "144crop": 144}
GOOGLENET_SCALES = (256, 288, 320, 352)  # for a 224×224 input


def crop_padding(specs) -> int:
    """The zero padding of the `crop:P` among an in-memory run's augmentation specs (bare `crop`: 4, as
    `cnnlab.data.augment` reads it; no crop: 0): where its 10 crops come from."""
    for spec in specs:
        name, _, arg = str(spec).partition(":")
        if name == "crop":
            return int(arg or 4)
    return 0


def check_mode(mode: str) -> int:
    """The number of views of `mode`, or a one-line error listing the modes."""
    if mode not in VIEWS:
        raise CnnlabError(f"unknown test-time augmentation {mode!r}: choose one of {', '.join(VIEWS)}")
    return VIEWS[mode]


class ViewAverage(nn.Module):
    """`model` on B·V views → (B, classes): log of the softmax averaged over each image's V views."""

    def __init__(self, model: nn.Module, views: int):
        super().__init__()
        self.model, self.views = model, views

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        probabilities = torch.softmax(logits.float(), dim=1).view(-1, self.views, logits.shape[1]).mean(1)
        return probabilities.clamp_min(torch.finfo(torch.float32).tiny).log()


# -- image folders: one PIL image → a (V, C, H, W) uint8 stack ---------------------------------------

class FolderViews:
    """The views of one image for a model input of `size`; `geometry` are the evaluation steps before
    the final centre crop (see `cnnlab.data.pipelines.FolderPipeline.eval_geometry`)."""

    def __init__(self, mode: str, size: tuple[int, int], geometry: list):
        check_mode(mode)
        self.mode, self.size = mode, tuple(size)
        self.geometry = list(geometry)
        self.to_tensor = v2.PILToTensor()

    def __call__(self, img) -> torch.Tensor:
        if self.mode == "144crop":
            views = googlenet_crops(img, self.size)
        else:
            for step in self.geometry:
                img = step(img)
            if self.mode == "flip":
                centre = TF.center_crop(img, list(self.size))
                views = [centre, TF.horizontal_flip(centre)]
            else:  # not TF.ten_crop: it mirrors the image before cropping (see the module docstring)
                crops = TF.five_crop(img, list(self.size))
                views = [*crops, *(TF.horizontal_flip(crop) for crop in crops)]
        return torch.stack([self.to_tensor(view) for view in views])

    def __str__(self) -> str:
        return f"{self.mode}: {VIEWS[self.mode]} views per image, softmax averaged"


def googlenet_crops(img, size: tuple[int, int]) -> list:
    """The 144 views of section 7 of the GoogLeNet paper (see the module docstring), scaled to `size`."""
    height, width = size
    views = []
    for scale in GOOGLENET_SCALES:
        side = round(scale * height / 224)
        resized = TF.resize(img, side)
        w, h = resized.size
        long_side, portrait = max(w, h), h > w
        for start in (0, (long_side - side) // 2, long_side - side):
            top, left = (start, 0) if portrait else (0, start)
            square = TF.crop(resized, top, left, side, side)
            crops = [*TF.five_crop(square, [height, width]), TF.resize(square, [height, width])]
            views += [view for crop in crops for view in (crop, TF.horizontal_flip(crop))]
    return views


# -- in-memory data sets: a batch on the device → its B·V views ---------------------------------------

class BatchViews:
    """Views of a whole float batch (B, C, H, W) on its device, with the batch-augmentation call
    signature of `cnnlab.data.augment` (the random-number arguments are unused: views are fixed)."""

    def __init__(self, mode: str, pad: int = 0):
        views = check_mode(mode)
        if mode == "144crop":
            raise CnnlabError("--tta 144crop needs the full-size photographs of an image folder; use 10crop or flip")
        if mode == "10crop" and pad < 1:
            raise CnnlabError("--tta 10crop on an in-memory data set crops the image zero-padded as in training "
                              "(crop:P), and this run trained without crop; use --tta flip")
        self.mode, self.pad, self.views = mode, pad, views

    def __call__(self, x: torch.Tensor, g=None, lo=0, total=0) -> torch.Tensor:
        b, c, h, w = x.shape
        if self.mode == "flip":
            views = [x, x.flip(3)]
        else:
            p = self.pad
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            corners = [(0, 0), (0, 2 * p), (2 * p, 0), (2 * p, 2 * p), (p, p)]  # as TenCrop: tl, tr, bl, br, centre
            crops = [padded[:, :, top:top + h, left:left + w] for top, left in corners]
            views = crops + [crop.flip(3) for crop in crops]
        return torch.stack(views, dim=1).reshape(b * self.views, c, h, w)

    def __str__(self) -> str:
        where = f" of the image zero-padded by {self.pad}" if self.mode == "10crop" else ""
        return f"{self.mode}: {self.views} views{where}, softmax averaged"
