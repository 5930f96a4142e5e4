"""The real data sets in ../shared/data: sizes, published class counts, first labels, statistics,
and the loader's adaptation of real images (LeNet-5's padded MNIST, AlexNet-sized Fashion-MNIST)."""

import pickle

import numpy as np
import pytest
import torch

from cnnlab.data import DATASETS, load_arrays
from cnnlab.data.loaders import build_loaders


def mean_std(images: np.ndarray, channel: int = 0) -> tuple[float, float]:
    """Exact mean and std of one channel on [0, 1], from the histogram of its 256 values (fast, no float copy)."""
    counts = np.bincount(images[:, channel].ravel(), minlength=256)
    values = np.arange(256) / 255
    mean = counts @ values / counts.sum()
    return mean, float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum()))


@pytest.fixture(scope="module")
def mnist(shared_data):
    return {s: load_arrays("mnist", s, shared_data) for s in ("train", "test")}


@pytest.fixture(scope="module")
def cifar10(shared_data):
    return {s: load_arrays("cifar10", s, shared_data) for s in ("train", "test")}


def test_mnist_sizes_and_published_class_counts(mnist):
    (x_train, y_train, _), (x_test, y_test, _) = mnist["train"], mnist["test"]
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_mnist_normalisation_constants_are_the_training_set_statistics(mnist):
    assert mean_std(mnist["train"][0]) == pytest.approx((DATASETS["mnist"].mean[0], DATASETS["mnist"].std[0]), abs=1e-4)


def test_fashion_mnist(shared_data):
    x_train, y_train, classes = load_arrays("fashion-mnist", "train", shared_data)
    x_test, y_test, _ = load_arrays("fashion-mnist", "test", shared_data)
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
    assert y_train[:5].tolist() == [9, 0, 0, 3, 0] and classes[9] == "Ankle boot"
    info = DATASETS["fashion-mnist"]
    assert mean_std(x_train) == pytest.approx((info.mean[0], info.std[0]), abs=1e-4)


def test_cifar10_labels_counts_and_test_statistics(cifar10):
    (x_train, y_train, classes), (x_test, y_test, _) = cifar10["train"], cifar10["test"]
    assert x_train.shape == (50000, 3, 32, 32) and x_test.shape == (10000, 3, 32, 32)
    assert classes == list(DATASETS["cifar10"].classes)
    assert y_train[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]  # frog, truck, truck, deer, ...
    assert y_test[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]  # cat, ship, ship, airplane, ...
    assert np.bincount(y_train).tolist() == [5000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
    assert x_train[0, 0, 0, :3].tolist() == [59, 43, 50]  # record 0's red plane, as published
    means, stds = zip(*(mean_std(x_test, c) for c in range(3)))  # the official test-set values (data README)
    assert means == pytest.approx([0.4942, 0.4851, 0.4504], abs=1e-4)
    assert stds == pytest.approx([0.2467, 0.2429, 0.2616], abs=1e-4)


def test_cifar10_python_version_matches_binary(tmp_path, cifar10):
    """The real test batch written in the python version's format reads back identical."""
    x_test, y_test, _ = cifar10["test"]
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": y_test.tolist(), b"data": x_test.reshape(10000, -1),
             b"filenames": [b"x.png"] * 10000}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    tiny = {**batch, b"labels": [0], b"data": x_test[:1].reshape(1, -1), b"filenames": [b"x.png"]}
    for name in [f"data_batch_{i}" for i in range(1, 6)]:  # present, as the layout needs; not read for "test"
        (folder / name).write_bytes(pickle.dumps(tiny, protocol=2))
    images, labels, _ = load_arrays("cifar10", "test", tmp_path)
    assert np.array_equal(images, x_test) and np.array_equal(labels, y_test)


def test_mnist_for_lenet5_is_padded_to_32(shared_data, mnist):
    data = build_loaders("mnist", (1, 32, 32), 128, data_dir=shared_data, eval_batch_size=500)
    assert data.describe()["adapt"] == ["zero-pad 28x28 -> 32x32 (2/2 px top/bottom, 2/2 left/right)"]
    x, y = next(iter(data.test))
    original = torch.from_numpy(mnist["test"][0][:500]).float() / 255
    assert torch.allclose(x[:, :, 2:30, 2:30], (original - 0.1307) / 0.3081, atol=1e-6)
    assert torch.allclose(x[:, :, :2], torch.tensor((0 - 0.1307) / 0.3081))
    assert y.tolist() == mnist["test"][1][:500].tolist()
    assert len(data.train) == 469 and data.train.num_samples == 60000


def test_fashion_mnist_for_alexnet_is_upscaled_and_repeated(shared_data):
    data = build_loaders("fashion-mnist", (3, 227, 227), 64, data_dir=shared_data, eval_batch_size=8)
    assert data.describe()["adapt"] == ["resize 28x28 -> 227x227 (bilinear)", "grey repeated to 3 channels"]
    assert data.mean == (0.2860,) * 3
    x, _ = next(iter(data.test))
    assert x.shape == (8, 3, 227, 227) and torch.equal(x[:, 0], x[:, 1])


def test_cifar10_held_out_validation_is_stratified(shared_data):
    data = build_loaders("cifar10", (3, 32, 32), 128, data_dir=shared_data, val_split=5000, eval_batch_size=5000,
                         augment=("crop:4", "flip"))
    d = data.describe()
    assert (d["train_size"], d["val_size"], d["test_size"]) == (45000, 5000, 10000)  # the ResNet paper's split
    assert torch.bincount(torch.cat([y for _, y in data.val])).tolist() == [500] * 10
    x, _ = next(iter(data.train))
    assert x.shape == (128, 3, 32, 32) and d["augment"] == ["crop:4", "flip"]


def test_cifar10_to_a_grey_28x28_model_shrinks_with_antialias(shared_data, cifar10):
    data = build_loaders("cifar10", (1, 28, 28), 64, data_dir=shared_data, eval_batch_size=10)
    assert data.describe()["adapt"] == ["resize 32x32 -> 28x28 (bilinear, antialias)", "RGB -> grey (0.299 R + 0.587 G + 0.114 B)"]
    grey = np.tensordot([0.299, 0.587, 0.114], cifar10["train"][0][::5].astype(np.float32) / 255, axes=([0], [1]))
    assert data.mean[0] == pytest.approx(grey.mean(), abs=2e-3) and data.std[0] == pytest.approx(grey.std(), abs=2e-3)
    x, _ = next(iter(data.test))
    assert x.shape == (10, 1, 28, 28)
