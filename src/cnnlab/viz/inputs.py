"""Inputs as the model sees them: an image file beside what cnnlab's preprocessing makes of it,
and a warning when the file looks unlike the training data.

A model trained on white digits on black (MNIST, scikit-learn's digits) confidently calls a digit
drawn black on white an "8": nothing in its training prepared it for a white background. The
check is deliberately simple and stated: the preprocessed image's mean pixel value (on [0, 1],
before normalisation) is compared with the training data's mean, in units of the training
pixels' standard deviation (the statistics the run normalises with); more than one standard
deviation away is "far". When the inverted image would be close, --invert is offered.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np

from cnnlab.viz.figure import display_image, plt, save

FAR = 1.0  # standard deviations of the training pixels between the image's mean and theirs


def brightness(x, mean, std) -> float:
    """Mean pixel value on [0, 1] of preprocessed input x (normalisation undone)."""
    return float(display_image(x, mean, std).mean())


def input_warning(path, x, mean, std) -> str | None:
    """One line when preprocessed input x (from file `path`) is far from the training data's
    statistics (`mean`, `std`: the run's normalisation), else None."""
    centre, spread = float(np.mean(mean)), float(np.mean(std))
    value = brightness(x, mean, std)
    if abs(value - centre) <= FAR * spread:
        return None
    brighter = "brighter" if value > centre else "darker"
    line = (f"{Path(path).name} is much {brighter} than the training images (mean pixel {value:.2f}, theirs "
            f"{centre:.2f} ± {spread:.2f}): the model may not see what you see")
    if abs(1 - value - centre) <= FAR * spread:
        line += "; it looks inverted (dark on light where the training images are light on dark): try --invert"
    return line


def plot_input(path, x, mean, std, out_dir, steps: list[str] | None = None, invert: bool = False) -> Path:
    """The file as stored beside the model's input (normalisation undone), with the steps
    between them; written as `<image name>-input.png` in `out_dir`."""
    from PIL import Image

    with Image.open(path) as img:
        original = np.asarray(img.convert("RGB"), dtype=np.float64) / 255
    seen = display_image(x, mean, std)
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.5, 4.2))
    left.imshow(original, interpolation="nearest")
    left.set_title(f"the file: {original.shape[1]}×{original.shape[0]}")
    right.imshow(seen, cmap="gray" if seen.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    right.set_title(f"the model's input: {'×'.join(map(str, x.shape[1:]))}")
    for ax in (left, right):
        ax.set_axis_off()
    done = (["inverted"] if invert else []) + list(steps or []) + ["normalised"]
    fig.suptitle(f"{Path(path).name} as the model sees it", y=0.98)
    caption = "preprocessing: " + ", then ".join(done) + f"; mean pixel {seen.mean():.2f}"
    fig.text(0.5, 0.03, textwrap.fill(caption, 95), ha="center", va="bottom", fontsize=9)
    fig.subplots_adjust(left=0.03, right=0.97, top=0.84, bottom=0.14, wspace=0.08)
    return save(fig, Path(out_dir) / f"{stem_of(path)}-input.png")


def steps_of(dataset: dict | None) -> list[str]:
    """The preprocessing steps of a run's data set (its config.json "dataset"), as load_image applies
    them to a file: to the data set's own size first, then as in training."""
    if not dataset:
        return ["shorter side resized, centre crop"]
    native = dataset.get("native_shape")
    first = [f"to the data set's {native[1]}×{native[2]} (shorter side resized, centre crop)"] if native else []
    return first + list(dataset.get("adapt", []))


def stem_of(path: str | os.PathLike) -> str:
    """The name figures of image `path` start with: its file name without the suffix."""
    return Path(path).stem
