"""What cnnlab knows about each data set before reading a byte: classes, native shape, sizes and
the normalisation constants. Pure Python, so the NumPy engine and the CLI can use it cheaply."""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.errors import CnnlabError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # native C, H, W (imagefolder: the size images are cropped to by default)
    mean: tuple[float, ...]  # per channel, on pixel values scaled to [0, 1]
    std: tuple[float, ...]
    train_size: int | None
    test_size: int | None
    source: str  # where the constants come from, for the docs and config.json


DIGITS_TEST_SIZE = 360  # of 1,797: 1,437 train / 360 test, stratified, seed 0
DIGITS_SPLIT_SEED = 0

DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        name="digits",
        classes=tuple(str(d) for d in range(10)),
        shape=(1, 8, 8),
        # measured on cnnlab's 1,437-image train split (values 0..16 scaled to 0..255); a test checks them
        mean=(0.3054,),
        std=(0.3760,),
        train_size=1797 - DIGITS_TEST_SIZE,
        test_size=DIGITS_TEST_SIZE,
        source="scikit-learn load_digits (UCI optdigits test set, 8x8, 0..16)",
    ),
    "mnist": DatasetInfo(
        name="mnist",
        classes=tuple(str(d) for d in range(10)),
        shape=(1, 28, 28),
        mean=(0.1307,),
        std=(0.3081,),
        train_size=60000,
        test_size=10000,
        source="LeCun et al. 1998, IDX files; mean/std of the training set (the usual constants)",
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        shape=(1, 28, 28),
        mean=(0.2860,),
        std=(0.3530,),
        train_size=60000,
        test_size=10000,
        source="Xiao et al. 2017, IDX files; mean/std of the training set",
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        shape=(3, 32, 32),
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        train_size=50000,
        test_size=10000,
        source="Krizhevsky 2009, binary or python version; mean/std of the official training set",
    ),
    "imagefolder": DatasetInfo(
        name="imagefolder",
        classes=(),
        shape=(3, 224, 224),
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        train_size=None,
        test_size=None,
        source="a train/ and val/ folder of class subfolders; ImageNet mean/std",
    ),
}

IN_MEMORY = ("digits", "mnist", "fashion-mnist", "cifar10")
MAX_PAD = 8  # images at most this many pixels smaller than the model's input are zero-padded, not resized


def dataset_info(name: str) -> DatasetInfo:
    """The info for `name`, or a one-line error listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, DATASETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise CnnlabError(f"unknown dataset {name!r}{hint}; choose one of: {', '.join(DATASETS)}") from None
