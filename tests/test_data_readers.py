"""Readers of the official formats: layouts of the data dir, and every kind of bad file."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from cnnlab.data import load_arrays, read_cifar_bin, read_cifar_py, read_idx
from cnnlab.data.readers import default_data_dir
from cnnlab.data.splits import stratified_split
from cnnlab.errors import CnnlabError

RNG = np.random.default_rng(0)


def idx_bytes(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    return bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_mnist(folder, n_train=12, n_test=5, gz=True, hyphen=True):
    """A tiny MNIST in the official layout; returns the train and test arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = RNG.integers(0, 10, n, dtype=np.uint8)
        arrays[prefix] = images, labels
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte" if hyphen else f"{prefix}-{kind.replace('-idx', '.idx')}-ubyte"
            data = idx_bytes(array)
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return arrays


def test_idx_round_trip_plain_and_gzip(tmp_path):
    array = RNG.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    assert np.array_equal(read_idx(tmp_path / "a"), array)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)
    floats = np.arange(6, dtype=">f4").reshape(2, 3)  # IDX's other types are big-endian too
    (tmp_path / "f").write_bytes(idx_bytes(floats, 0x0D))
    assert read_idx(tmp_path / "f").tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"\x08\x03" + b[2:], "wrong magic"),              # bytes swapped
    (lambda b: b[:2] + b"\x42" + b[3:], "wrong magic"),          # unknown type code
    (lambda b: b[:-7], "truncated"),
    (lambda b: b + b"\0", "longer than its header"),
    (lambda b: b[:10], "truncated"),                             # header cut inside the dims
])
def test_corrupt_idx_is_one_user_error(tmp_path, damage, message):
    good = idx_bytes(RNG.integers(0, 256, (4, 28, 28), dtype=np.uint8))
    (tmp_path / "x").write_bytes(damage(good))
    with pytest.raises(CnnlabError, match=message):
        read_idx(tmp_path / "x")


def test_truncated_gzip_is_one_user_error(tmp_path):
    data = gzip.compress(idx_bytes(RNG.integers(0, 256, (50, 28, 28), dtype=np.uint8)))
    (tmp_path / "x.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CnnlabError, match="gzip"):
        read_idx(tmp_path / "x.gz")


@pytest.mark.parametrize("layout", ["cnnlab", "direct", "torchvision", "plain-names"])
def test_mnist_layouts(tmp_path, layout):
    folder = {"cnnlab": tmp_path / "mnist", "direct": tmp_path, "torchvision": tmp_path / "MNIST" / "raw",
              "plain-names": tmp_path / "mnist"}[layout]
    arrays = write_mnist(folder, gz=layout != "torchvision", hyphen=layout != "plain-names")
    images, labels, classes = load_arrays("mnist", "test", tmp_path)
    assert images.shape == (5, 1, 28, 28) and images.dtype == np.uint8 and labels.dtype == np.int64
    assert np.array_equal(images[:, 0], arrays["t10k"][0]) and np.array_equal(labels, arrays["t10k"][1])
    assert classes == [str(d) for d in range(10)]


def test_missing_dataset_says_where_it_looked_and_how_to_fix(tmp_path):
    with pytest.raises(CnnlabError) as error:
        load_arrays("fashion-mnist", "train", tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "fashion-mnist") in message and "--data-dir" in message and "--download" in message
    assert "train-images-idx3-ubyte.gz" in message


def test_images_and_labels_of_different_lengths(tmp_path):
    write_mnist(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(4, np.uint8))))
    with pytest.raises(CnnlabError, match="labels"):
        load_arrays("mnist", "test", tmp_path)


def test_data_dir_default_order(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "env"))
    assert default_data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert default_data_dir() == tmp_path / "env"
    monkeypatch.delenv("CNNLAB_DATA")
    assert default_data_dir() == default_data_dir().home() / ".cache" / "cnnlab"


# --- CIFAR-10 ---------------------------------------------------------------------------------------

def fake_cifar(n):
    return RNG.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), RNG.integers(0, 10, n).astype(np.int64)


def write_cifar_bin(folder, parts):
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name, (images, labels) in zip(names, parts):
        records = np.concatenate([labels.astype(np.uint8)[:, None], images.reshape(len(images), -1)], axis=1)
        (folder / name).write_bytes(records.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join("abcdefghij") + "\n\n")


def write_cifar_py(folder, parts, protocol=2):
    """The python version's layout: dicts with bytes keys, as the original (Python 2) files have."""
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, (images, labels) in zip(names, parts):
        batch = {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": images.reshape(len(images), -1),
                 b"filenames": [f"{i}.png".encode() for i in range(len(labels))]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    meta = {b"label_names": [c.encode() for c in "abcdefghij"], b"num_cases_per_batch": 10000, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))


@pytest.fixture(scope="module")
def cifar_parts():
    return [fake_cifar(n) for n in (3, 2, 2, 2, 2, 4)]


def test_cifar_bin_and_py_versions_read_the_same(tmp_path, cifar_parts):
    write_cifar_bin(tmp_path / "bin" / "cifar10" / "cifar-10-batches-bin", cifar_parts)
    write_cifar_py(tmp_path / "py" / "cifar10" / "cifar-10-batches-py", cifar_parts)
    write_cifar_py(tmp_path / "tv" / "cifar-10-batches-py", cifar_parts, protocol=4)  # torchvision's layout
    train_images = np.concatenate([p[0] for p in cifar_parts[:5]])
    for root in ("bin", "py", "tv"):
        images, labels, classes = load_arrays("cifar10", "train", tmp_path / root)
        assert np.array_equal(images, train_images) and classes == list("abcdefghij")
        images, labels, _ = load_arrays("cifar10", "test", tmp_path / root)
        assert np.array_equal(labels, cifar_parts[5][1])


def test_truncated_cifar_bin(tmp_path, cifar_parts):
    write_cifar_bin(tmp_path / "cifar10" / "cifar-10-batches-bin", cifar_parts)
    path = tmp_path / "cifar10" / "cifar-10-batches-bin" / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CnnlabError, match="truncated"):
        load_arrays("cifar10", "test", tmp_path)
    bad = bytearray(3073)
    bad[0] = 11
    path.write_bytes(bytes(bad))
    with pytest.raises(CnnlabError, match="label"):
        read_cifar_bin(path)


def test_truncated_cifar_py(tmp_path, cifar_parts):
    write_cifar_py(tmp_path / "cifar-10-batches-py", cifar_parts)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(CnnlabError, match="test_batch"):
        load_arrays("cifar10", "test", tmp_path)


class _Payload:
    """Unpickling this runs os.system: what a hostile 'CIFAR-10' file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_hostile_cifar_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    hostile = pickle.dumps({b"data": _Payload(marker), b"labels": []}, protocol=2)
    (tmp_path / "test_batch").write_bytes(hostile)
    with pytest.raises(CnnlabError, match="not allowed"):
        read_cifar_py(tmp_path / "test_batch")
    assert not marker.exists()
    pickle.loads(hostile)  # the payload is live: an unrestricted unpickler does run it
    assert marker.exists()


def test_cifar_pickle_with_wrong_contents(tmp_path):
    (tmp_path / "b").write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}))
    with pytest.raises(CnnlabError, match="uint8"):
        read_cifar_py(tmp_path / "b")
    (tmp_path / "c").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CnnlabError, match="not a dict"):
        read_cifar_py(tmp_path / "c")


def test_digits_split_is_fixed_stratified_and_scaled():
    x_train, y_train, classes = load_arrays("digits", "train")
    x_test, y_test, _ = load_arrays("digits", "test")
    assert (len(x_train), len(x_test)) == (1437, 360) and x_train.shape[1:] == (1, 8, 8)
    assert x_train.max() == 255 and x_train.min() == 0  # 16 -> 255
    assert set(np.unique(x_train)) <= {round(v * 255 / 16) for v in range(17)}
    per_class = np.bincount(np.concatenate([y_train, y_test]))
    assert per_class.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # the UCI test set's counts
    share = per_class * 360 / 1797  # stratified: each class gives its share of the 360, rounded either way
    assert np.all(np.abs(np.bincount(y_test) - share) < 1)
    again, _, _ = load_arrays("digits", "test")
    assert np.array_equal(again, x_test)


def test_digits_are_scikit_learns_images_in_scikit_learns_split():
    """cnnlab reads the file and draws the split itself (importing scikit-learn costs 0.9 s):
    the same images, the same labels, the same indices in the same order as scikit-learn's."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)[:, None]
    theirs = train_test_split(images, digits.target, test_size=360, stratify=digits.target, random_state=0)
    for split, x, y in (("train", theirs[0], theirs[2]), ("test", theirs[1], theirs[3])):
        ours_x, ours_y, _ = load_arrays("digits", split)
        assert np.array_equal(ours_x, x) and np.array_equal(ours_y, y), split
    for seed in range(4):  # other sizes and seeds, where the largest-remainder ties are drawn differently
        for size in (10, 97, 1000):
            index = np.arange(len(digits.target))
            expected = train_test_split(index, test_size=size, stratify=digits.target, random_state=seed)
            got = stratified_split(digits.target, size, seed)
            assert all(np.array_equal(a, b) for a, b in zip(got, expected)), (seed, size)


def test_validation_hold_outs_are_scikit_learns_draws():
    """`--val-split` holds out what train_test_split(stratify=labels, random_state=0) does, and its
    plain shuffle where stratifying is impossible: the images runs always held out."""
    from sklearn.model_selection import train_test_split

    from cnnlab.data.batching import VAL_SPLIT_SEED, holdout

    cifar_like = np.repeat(np.arange(10), 500)[np.random.default_rng(1).permutation(5000)]
    uneven = np.concatenate([np.zeros(7, int), np.ones(30, int), np.full(3, 2)])
    lone = np.concatenate([np.zeros(20, int), [1]])  # a class of one image: no stratified split
    for labels, sizes in ((cifar_like, (500, 0.1, 37)), (uneven, (3, 5, 0.25, 38)), (lone, (4,))):
        for size in sizes:
            count = round(size * len(labels)) if size < 1 else size
            index = np.arange(len(labels))
            try:
                expected = train_test_split(index, test_size=count, stratify=labels, random_state=VAL_SPLIT_SEED)
            except ValueError:  # fewer held-out (or kept) images than classes, or a lone image
                expected = train_test_split(index, test_size=count, random_state=VAL_SPLIT_SEED)
            train, val = holdout(labels, size)
            assert np.array_equal(train, np.sort(expected[0])) and np.array_equal(val, np.sort(expected[1])), size


def test_the_digits_do_not_import_scikit_learn():
    import subprocess
    import sys

    code = "import sys, cnnlab.data as d; d.load_arrays('digits', 'test'); sys.exit('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_readers_never_import_torch(tmp_path):
    """The NumPy engine reads data through cnnlab.data without torch."""
    import subprocess
    import sys

    write_mnist(tmp_path / "mnist")
    code = ("import sys, cnnlab.data as d; d.load_arrays('mnist', 'train', sys.argv[1]); d.load_arrays('digits', 'test'); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)


def test_download_lands_in_torchvision_layout_and_is_found(tmp_path, monkeypatch):
    """--download hands over to torchvision (no network in tests: a stand-in writes what it would)."""
    import cnnlab.data.download as download

    calls = []

    def fake_download(name, root):
        calls.append((name, root))
        write_mnist(root / "MNIST" / "raw", gz=False)  # torchvision's MNIST keeps the gunzipped files there

    monkeypatch.setattr(download, "download", fake_download)
    images, _, _ = load_arrays("mnist", "train", tmp_path, download=True)
    assert calls == [("mnist", tmp_path)] and images.shape == (12, 1, 28, 28)
    load_arrays("mnist", "test", tmp_path, download=True)  # already there: no second download
    assert len(calls) == 1
