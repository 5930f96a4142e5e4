"""Readers for the official file formats, in pure NumPy (the NumPy engine uses them without torch).

Every reader checks what it reads (magic number, header, length) and turns a bad or missing file
into one `CnnlabError` that names the file and the fix.

    load_arrays(name, split) -> (images uint8 N x C x H x W, labels int64 N, classes list[str])
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
import os
import pickle
import zlib
from pathlib import Path

import numpy as np

from cnnlab.data.info import DIGITS_SPLIT_SEED, DIGITS_TEST_SIZE, IN_MEMORY, dataset_info
from cnnlab.data.splits import stratified_split
from cnnlab.errors import CnnlabError

SPLITS = ("train", "test")

# IDX type byte -> big-endian element type (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte + R, G, B planes of 32 x 32


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when its name ends in .gz; a broken gzip stream is a user error."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise CnnlabError(f"{path} does not exist") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise CnnlabError(f"{path} is not a complete gzip file ({error}): download it again") from None
    except OSError as error:
        raise CnnlabError(f"cannot read {path} ({error.strerror or error})") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (MNIST, Fashion-MNIST), gzipped or not, as an array of its declared shape."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES or data[3] == 0:
        raise CnnlabError(f"{path} is not an IDX file (wrong magic number {data[:4].hex() or 'none'}): download it again")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CnnlabError(f"{path} is truncated: its header ends after {len(data)} bytes: download it again")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise CnnlabError(f"{path} is {what}: {len(data):,} bytes where shape {dims} needs {expected:,}: download it again")
    array = np.frombuffer(bytearray(data), dtype, offset=header).reshape(dims)  # bytearray: writable
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_cifar_bin(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One file of CIFAR-10's binary version: (images uint8 N x 3 x 32 x 32 RGB, labels int64 N)."""
    path = Path(path)
    try:
        raw = np.fromfile(path, np.uint8)
    except FileNotFoundError:
        raise CnnlabError(f"{path} does not exist") from None
    if raw.size == 0 or raw.size % CIFAR_RECORD:
        raise CnnlabError(
            f"{path} is truncated or not a CIFAR-10 binary file: {raw.size:,} bytes is not a multiple of "
            f"the {CIFAR_RECORD}-byte record: download it again"
        )
    records = raw.reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise CnnlabError(f"{path} is not a CIFAR-10 binary file: label byte {labels.max()} is not in 0..9")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


class _CifarUnpickler(pickle.Unpickler):
    """Allows only what the official python version holds: a dict of NumPy uint8 arrays, lists,
    strings, bytes and ints. Any other global (os.system, eval, ...) is refused before it is called."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):  # how Python 3 protocol 2 spells bytes
            return _latin1_encode
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 file")


def _latin1_encode(text, encoding="latin1"):
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError("only latin1 strings may be encoded in a CIFAR-10 file")
    return text.encode("latin1")


def read_cifar_py(path: str | os.PathLike) -> dict:
    """One pickled file of CIFAR-10's python version, read with a restricted unpickler.

    Returns the dict with str keys. A data batch is checked: "data" uint8 N x 3072, "labels" N ints.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CnnlabError(f"{path} does not exist") from None
    try:
        obj = _CifarUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        raise CnnlabError(f"{path} is not a valid CIFAR-10 python file ({error}): download it again") from None
    if not isinstance(obj, dict):
        raise CnnlabError(f"{path} is not a CIFAR-10 python file: it holds a {type(obj).__name__}, not a dict")
    obj = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
    if "data" in obj:
        images, labels = obj.get("data"), obj.get("labels")
        if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 2 and images.shape[1] == 3072):
            raise CnnlabError(f"{path} is truncated or not a CIFAR-10 batch: 'data' is not a uint8 N x 3072 array")
        if not isinstance(labels, list) or len(labels) != len(images) or not all(isinstance(y, int) and 0 <= y <= 9 for y in labels):
            raise CnnlabError(f"{path} is not a CIFAR-10 batch: 'labels' is not a list of {len(images)} labels in 0..9")
    return obj


# --- where the files are ------------------------------------------------------------------------

def default_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """--data-dir, else $CNNLAB_DATA, else ~/.cache/cnnlab."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("CNNLAB_DATA"):
        return Path(os.environ["CNNLAB_DATA"]).expanduser()
    return Path.home() / ".cache" / "cnnlab"


# folders tried under the data dir, in order: cnnlab's layout, the folder itself, torchvision's layout
_CANDIDATES = {
    "mnist": ("mnist", "mnist/raw", ".", "MNIST/raw"),
    "fashion-mnist": ("fashion-mnist", "fashion-mnist/raw", ".", "FashionMNIST/raw"),
    "cifar10": ("cifar10/cifar-10-batches-bin", "cifar10/cifar-10-batches-py", "cifar-10-batches-bin",
                "cifar-10-batches-py", ".", "cifar10"),
}

_IDX_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_CIFAR_FILES = {"bin": {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]},
                "py": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}}


def _find_idx(folder: Path, stem: str) -> Path | None:
    for base in (stem, stem.replace("-idx", ".idx")):  # official name, and the dotted one some mirrors use
        for name in (base + ".gz", base):
            if (folder / name).is_file():
                return folder / name
    return None


def _locate(name: str, root: Path) -> tuple[Path, str] | None:
    """(folder, format) of data set `name` under `root`, or None. Format: "idx", "bin" or "py"."""
    for sub in _CANDIDATES[name]:
        folder = (root / sub).resolve()
        if name == "cifar10":
            for fmt, files in _CIFAR_FILES.items():
                if all((folder / f).is_file() for f in files["train"] + files["test"]):
                    return folder, fmt
        elif all(_find_idx(folder, stem) for pair in _IDX_STEMS.values() for stem in pair):
            return folder, "idx"
    return None


def _missing_message(name: str, root: Path) -> str:
    looked = ", ".join(str(root / s) for s in dict.fromkeys(_CANDIDATES[name]))
    need = ("data_batch_1..5.bin and test_batch.bin (cifar-10-batches-bin) or the python version's data_batch_1..5 "
            "and test_batch (cifar-10-batches-py)") if name == "cifar10" else \
        "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"
    home = "cifar10/cifar-10-batches-bin" if name == "cifar10" else name
    return (f"{name} not found; looked in {looked}. Put {need} in {root / home}, point --data-dir "
            f"(or $CNNLAB_DATA) at a folder that holds them, or add --download")


# --- the data sets --------------------------------------------------------------------------------

def _digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits, 0..16 scaled to 0..255, in a fixed stratified split."""
    return tuple(a.copy() for a in _digits_split()[split])


@functools.lru_cache(maxsize=1)
def _digits_split() -> dict:
    images, labels = _read_digits()
    train, test = stratified_split(labels, DIGITS_TEST_SIZE, DIGITS_SPLIT_SEED)
    images = np.rint(images * (255 / 16)).astype(np.uint8)[:, None]
    return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits (8×8, 0..16) and labels from the file scikit-learn bundles, read without
    importing scikit-learn: that import (SciPy with it) took 0.9 s of the README's main command."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz") if spec else None
    if path is None or not path.is_file():
        raise CnnlabError("the digits data set comes with scikit-learn, which is missing: pip install scikit-learn")
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 8, 8).astype(np.float64), table[:, -1]


def _cifar_classes(folder: Path, fmt: str) -> list[str] | None:
    if fmt == "bin" and (folder / "batches.meta.txt").is_file():
        return [line.strip() for line in (folder / "batches.meta.txt").read_text().splitlines() if line.strip()]
    if fmt == "py" and (folder / "batches.meta").is_file():
        names = read_cifar_py(folder / "batches.meta").get("label_names")
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names] if isinstance(names, list) else None
    return None


def _cifar10(folder: Path, fmt: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    parts = []
    for file in _CIFAR_FILES[fmt][split]:
        if fmt == "bin":
            parts.append(read_cifar_bin(folder / file))
        else:
            batch = read_cifar_py(folder / file)
            parts.append((batch["data"].reshape(-1, 3, 32, 32), np.asarray(batch["labels"], np.int64)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _idx_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    image_file, label_file = (_find_idx(folder, stem) for stem in _IDX_STEMS[split])
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise CnnlabError(f"{image_file} is not an image file: shape {images.shape}, type {images.dtype}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise CnnlabError(f"{label_file} has {labels.shape} labels for {len(images)} images in {image_file}")
    return images[:, None], labels.astype(np.int64)


def load_arrays(name: str, split: str, data_dir: str | os.PathLike | None = None, download: bool = False):
    """(images uint8 N x C x H x W, labels int64 N, classes) of `split` ("train" or "test") of `name`."""
    info = dataset_info(name)
    if name not in IN_MEMORY:
        raise CnnlabError(f"{name} is not an in-memory data set; use cnnlab.data.loaders.build_loaders for it")
    if split not in SPLITS:
        raise CnnlabError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    classes = list(info.classes)
    if name == "digits":
        images, labels = _digits(split)
        return images, labels, classes
    root = default_data_dir(data_dir)
    found = _locate(name, root)
    if found is None and download:
        from cnnlab.data.download import download

        download(name, root)
        found = _locate(name, root)
    if found is None:
        raise CnnlabError(_missing_message(name, root))
    folder, fmt = found
    if name == "cifar10":
        images, labels = _cifar10(folder, fmt, split)
        classes = _cifar_classes(folder, fmt) or classes
    else:
        images, labels = _idx_pair(folder, split)
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise CnnlabError(f"{name} {split} labels in {folder} run {labels.min()}..{labels.max()}, not 0..{len(classes) - 1}")
    return images, labels, classes
