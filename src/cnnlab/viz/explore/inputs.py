"""The images a page is made for: files the user names, else a run's test images, else (a zoo model
with no data set) simple patterns drawn here, named as such on the page."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from cnnlab.errors import CnnlabError

RUN_IMAGES = 8  # test images of a run's data set, one per class while classes last
PATTERN_IMAGES = 3
UPLOAD_LIMIT = 8 * 1024 * 1024  # bytes of one uploaded image in live mode


def chosen_inputs(subject, files: list[str], count: int | None = None) -> list[tuple[torch.Tensor, str, str | None]]:
    """[(1×C×H×W input, name, true class or None)] for the page."""
    if files:
        return [(subject.load_input(path), Path(path).name, None) for path in files]
    if subject.run is not None:
        return _test_images(subject, RUN_IMAGES if count is None else count)
    return _patterns(subject, PATTERN_IMAGES if count is None else count)


def _test_images(subject, count: int):
    from cnnlab.data import load_arrays
    from cnnlab.run import data_dir_of

    dataset = subject.config["dataset"]["dataset"]
    if dataset == "imagefolder":
        raise CnnlabError(f"{subject.run} was trained on an image folder: name the images to explore, "
                          f"e.g. cnnlab explore {subject.run} photo.jpg")
    try:
        images, labels, _ = load_arrays(dataset, "test", data_dir_of(subject.config, None))
    except CnnlabError as error:
        raise CnnlabError(f"{error}; or name the images to explore after the run") from None
    picks = _one_per_class(labels, count)
    return [(subject.adapt(images[i:i + 1]), f"test image {i}", subject.classes[int(labels[i])]) for i in picks]


def _one_per_class(labels: np.ndarray, count: int) -> list[int]:
    """The first test image of each class in turn, then the next of each, until `count`."""
    picks: list[int] = []
    by_class = [list(np.flatnonzero(labels == k)) for k in np.unique(labels)]
    while len(picks) < min(count, len(labels)):
        for indices in by_class:
            if indices and len(picks) < count:
                picks.append(int(indices.pop(0)))
    return sorted(picks)


def _patterns(subject, count: int):
    """A disc, stripes, a checkerboard, a diagonal edge … (up to 8): inputs with obvious structure for
    a model that has no data set, at its input size."""
    c, h, w = subject.input_shape
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    shapes = {
        "disc": (x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.09,
        "stripes": np.sin(x * 6 * np.pi) > 0,
        "checkerboard": (np.floor(x * 4) + np.floor(y * 4)) % 2 == 0,
        "diagonal edge": x > y,
        "ring": np.abs(np.hypot(x - 0.5, y - 0.5) - 0.3) < 0.06,
        "cross": (np.abs(x - 0.5) < 0.08) | (np.abs(y - 0.5) < 0.08),
        "dots": (np.hypot((x * 5) % 1 - 0.5, (y * 5) % 1 - 0.5) < 0.25),
        "gradient": x,
    }
    tints = ((1.0, 0.3, 0.1), (0.1, 0.6, 1.0), (0.9, 0.9, 0.2), (0.2, 0.9, 0.4), (0.8, 0.2, 0.9), (1.0, 1.0, 1.0),
             (0.3, 0.9, 0.9), (1.0, 0.6, 0.2))
    chosen = list(shapes.items())[:count]
    images = []
    for (name, mask), tint in zip(chosen, tints):
        grey = np.asarray(mask, dtype=np.float64)
        colour = grey[None] * np.asarray(tint[:c] if c == 3 else (1.0,) * c)[:, None, None]
        images.append(((colour * 255).round().astype(np.uint8), f"pattern: {name}"))
    if c in (1, 3):
        return [(subject.adapt(image[None]), name, None) for image, name in images]
    mean = torch.tensor(subject.mean)[:, None, None]  # a block model (e.g. one Inception module) reads
    std = torch.tensor(subject.std)[:, None, None]  # feature maps: the pattern in every channel
    return [(((torch.from_numpy(image).float() / 255 - mean) / std)[None], name, None) for image, name in images]


def decode_upload(data: bytes, subject) -> torch.Tensor:
    """An uploaded file's bytes as the model's input; a one-line CnnlabError for anything that is
    too big, not an image, or refused by Pillow (truncated files, decompression bombs)."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > UPLOAD_LIMIT:
        raise CnnlabError(f"the upload is {len(data):,} bytes; the limit is {UPLOAD_LIMIT:,}")
    if not data:
        raise CnnlabError("the upload is empty: send an image file (PNG, JPEG, ...)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Image.DecompressionBombError as error:
        raise CnnlabError(f"Pillow refuses the image as a possible decompression bomb ({error})") from None
    except UnidentifiedImageError:
        raise CnnlabError("the upload is not an image Pillow can read (PNG, JPEG, GIF, BMP, WebP, ...)") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise CnnlabError(f"Pillow cannot decode the image ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
    return subject.load_input(io.BytesIO(data))


def check_files(files: list[str]) -> None:
    """Every named image exists, before any work is done."""
    for path in files:
        if not os.path.isfile(path):
            raise CnnlabError(f"image {path} does not exist" if not os.path.exists(path) else f"{path} is not a file")
