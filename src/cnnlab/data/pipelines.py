"""The papers' image pipelines for image folders, from augmentation specs, with torchvision's
transforms (v2) wherever it has the piece.

    spec            training step (torchvision v2)                          the paper that used it
    shorter:S       Resize(S): the shorter side to S                       AlexNet (256), VGG (single scale)
    shorter:A-B     RandomResize(A, B+1): shorter side uniform in [A, B]   VGG [256, 512], ResNet [256, 480]
    centre:S        CenterCrop(S): the central S×S                         AlexNet (256×256)
    crop[:P]        RandomCrop(input size, padding P)                      AlexNet, VGG, ResNet
    area[:A-B]      RandomResizedCrop(input size, area A–B, aspect 3/4–4/3) GoogLeNet (8–100%)
    flip            RandomHorizontalFlip()                                 all of them
    colour[:S]      ColorJitter(S, S, S): brightness, contrast, saturation GoogLeNet (Howard's, S = 0.5)
    pca[:S]         AlexNet's PCA lighting, σ = S (hand-written, on the device: torchvision has none)
    eval:S          evaluation: shorter side to S instead of the default below

Geometry runs in the order shorter → centre → crop or area; the photometric steps follow. Without
`shorter` (and without `area`) an image is first fitted by the default rule (`DefaultFit`); without
`crop` or `area` it is centre-cropped to the model's input. Evaluation is the training geometry made
deterministic: shorter side to `eval:S`, else to the training S (the middle of a jittered range,
VGG's Q = (S_min + S_max)/2), else the default fit; then `centre:S`; then the central input-size
crop (or the test-time views of `cnnlab.data.tta`).

The default fit is hand-written because it decides per image: an image of at most 64 pixels a side
is treated as the in-memory data sets treat theirs (kept at the model's size, zero-padded when up to
8 pixels smaller, else its shorter side resized to the input), so a folder of 32×32 images feeds a
32×32 model untouched; a larger image gets the ImageNet habit (shorter side to H·256/224).
"""

from __future__ import annotations

from dataclasses import dataclass

from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from cnnlab.data.info import MAX_PAD
from cnnlab.errors import CnnlabError

EVAL_RESIZE = 256 / 224  # larger images: shorter side to H * 256/224, then the centre H x W (the ImageNet habit)
SMALL = 64  # images with both sides at most this many pixels are fitted, not resized up and cropped
ASPECT = (3 / 4, 4 / 3)  # GoogLeNet's aspect ratios for area crops
GEOMETRY = ("shorter", "centre", "crop", "area")  # their order in a pipeline
SPECS = ("shorter:S", "shorter:A-B", "centre:S", "crop[:P]", "area[:A-B]", "flip", "colour[:S]", "pca[:S]", "eval:S")


class DefaultFit:
    """Per image: at most SMALL pixels a side, fit it to `size` as the in-memory loaders do (see the
    module docstring); otherwise resize the shorter side to H·256/224. Leaves the final crop to the
    caller."""

    def __init__(self, size: tuple[int, int]):
        self.size = size
        self.large = v2.Resize(round(size[0] * EVAL_RESIZE))

    def __call__(self, img):
        width, height = img.size
        if max(width, height) > SMALL:
            return self.large(img)
        target_h, target_w = self.size
        dh, dw = target_h - height, target_w - width
        if (dh, dw) == (0, 0):
            return img
        if 0 <= dh <= MAX_PAD and 0 <= dw <= MAX_PAD:
            return TF.pad(img, [dw // 2, dh // 2, dw - dw // 2, dh - dh // 2])
        return TF.resize(img, min(self.size))

    def __str__(self) -> str:
        return (f"images <= {SMALL} px: kept at {self.size[0]}x{self.size[1]} (zero-padded up to {MAX_PAD} px, else "
                f"shorter side resized to {min(self.size)}); larger: shorter side to {round(self.size[0] * EVAL_RESIZE)}")


def _range(text: str, cast, low: float, high: float) -> tuple:
    parts = text.split("-")
    values = tuple(cast(p) for p in parts)
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or not low <= values[0] <= values[1] <= high:
        raise ValueError
    return values


def parse(specs) -> dict[str, object]:
    """{name: value} of image-folder augmentation specs, checked; one-line errors name the fix."""
    parsed: dict[str, object] = {}
    order = []
    for spec in specs:
        name, _, arg = str(spec).partition(":")
        name = {"center": "centre", "color": "colour"}.get(name, name)
        try:
            if name in parsed:
                raise CnnlabError(f"augmentation {name} given twice in {list(specs)}")
            if name == "shorter":
                value = _range(arg, int, 1, 1 << 16)
            elif name in ("centre", "eval"):
                value = int(arg)
                if value < 1:
                    raise ValueError
            elif name == "crop":
                value = int(arg or 0)
                if value < 0:
                    raise ValueError
            elif name == "area":
                value = _range(arg or "0.08-1", float, 1e-6, 1.0)
            elif name == "flip" and not arg:
                value = True
            elif name in ("colour", "pca"):
                value = float(arg or (0.4 if name == "colour" else 0.1))
                if value <= 0:
                    raise ValueError
            else:
                raise ValueError
        except ValueError:
            raise CnnlabError(f"bad augmentation {spec!r} for an image folder; use any of {', '.join(SPECS)} "
                              "(e.g. shorter:256 centre:256 crop flip pca:0.1)") from None
        parsed[name] = value
        if name in GEOMETRY:
            order.append(name)
    if "crop" in parsed and "area" in parsed:
        raise CnnlabError("augmentations crop and area both choose the final crop: give one of them")
    if order != sorted(order, key=GEOMETRY.index):
        raise CnnlabError(f"image-folder geometry runs in the order shorter, centre, crop/area; got {' '.join(order)}")
    return parsed


def _rescale(parsed: dict, size, training: bool) -> tuple[object, str]:
    """The first geometric step and its description: the shorter-side resize, else the default fit."""
    if not training and "eval" in parsed:
        side = parsed["eval"]
        return v2.Resize(side), f"resize shorter side to {side}"
    if "shorter" in parsed:
        low, high = parsed["shorter"]
        if low == high:
            return v2.Resize(low), f"resize shorter side to {low}"
        if training:
            return v2.RandomResize(low, high + 1), f"shorter side uniform in [{low}, {high}] (scale jittering)"
        side = round((low + high) / 2)
        return v2.Resize(side), f"resize shorter side to {side} (the middle of [{low}, {high}])"
    fit = DefaultFit(size)
    return fit, str(fit)


@dataclass
class FolderPipeline:
    """What an image folder's loaders apply: PIL image → uint8 tensor (C, H, W), then on the device
    PCA lighting (`pca`, a σ or None) before normalisation."""

    train: v2.Compose
    evaluate: v2.Compose
    eval_geometry: list  # the evaluation steps before its final centre crop (test-time views replace it)
    pca: float | None
    train_steps: list[str]
    eval_steps: list[str]


def folder_pipeline(specs, size: tuple[int, int]) -> FolderPipeline:
    """The training and evaluation transforms of `specs` for a model input of `size` (H, W)."""
    parsed = parse(specs)
    train, train_steps = [], []
    if "area" not in parsed or "shorter" in parsed:
        step, text = _rescale(parsed, size, training=True)
        train.append(step)
        train_steps.append(text)
    if "centre" in parsed:
        train.append(v2.CenterCrop(parsed["centre"]))
        train_steps.append(f"centre {parsed['centre']}x{parsed['centre']}")
    if "crop" in parsed:
        pad = parsed["crop"]
        train.append(v2.RandomCrop(size, padding=pad or None, pad_if_needed=True))
        train_steps.append(f"random {size[0]}x{size[1]} crop" + (f" (zero-padded by {pad})" if pad else ""))
    elif "area" in parsed:
        low, high = parsed["area"]
        train.append(v2.RandomResizedCrop(size, scale=(low, high), ratio=ASPECT, antialias=True))
        train_steps.append(f"random crop of {low:.0%}-{high:.0%} of the area, aspect 3/4-4/3, to {size[0]}x{size[1]}")
    else:
        train.append(v2.CenterCrop(size))
        train_steps.append(f"centre-crop {size[0]}x{size[1]}")
    if parsed.get("flip"):
        train.append(v2.RandomHorizontalFlip())
        train_steps.append("flip (p = 1/2)")
    if "colour" in parsed:
        s = parsed["colour"]
        train.append(v2.ColorJitter(brightness=s, contrast=s, saturation=s))
        train_steps.append(f"colour jitter {s:g} (brightness, contrast, saturation, random order)")
    if "pca" in parsed:
        train_steps.append(f"PCA lighting sigma {parsed['pca']:g} (on the device)")

    step, text = _rescale(parsed, size, training=False)
    geometry, eval_steps = [step], [text]
    if "centre" in parsed:
        geometry.append(v2.CenterCrop(parsed["centre"]))
        eval_steps.append(f"centre {parsed['centre']}x{parsed['centre']}")
    to_tensor = v2.PILToTensor()  # uint8 through the workers; scaled on the device
    return FolderPipeline(
        train=v2.Compose([*train, to_tensor]),
        evaluate=v2.Compose([*geometry, v2.CenterCrop(size), to_tensor]),
        eval_geometry=geometry,
        pca=parsed.get("pca"),
        train_steps=train_steps,
        eval_steps=[*eval_steps, f"centre-crop {size[0]}x{size[1]}"],
    )
