"""Image folders: layout errors, unreadable images skipped and counted, deterministic epochs, predict input."""

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data.loaders import build_loaders
from cnnlab.data.preprocess import load_image
from cnnlab.errors import CnnlabError


def make_folder(root, classes=("cat", "dog"), n_train=5, n_val=2, size=(40, 50)):
    rng = np.random.default_rng(0)
    for part, n in (("train", n_train), ("val", n_val)):
        for c in classes:
            (root / part / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / part / c / f"{i}.png")
    return root


def test_loads_resizes_and_normalises(tmp_path):
    data = build_loaders("imagefolder", (3, 32, 32), 4, data_dir=make_folder(tmp_path), workers=0)
    assert data.classes == ["cat", "dog"]
    d = data.describe()
    assert (d["train_size"], d["test_size"]) == (10, 4) and d["mean"] == [0.485, 0.456, 0.406]
    xs, ys = zip(*data.test)
    assert [x.shape for x in xs] == [(4, 3, 32, 32)] and torch.cat(ys).tolist() == [0, 0, 1, 1]
    # the test images are the val/ files, small (40x50), so fitted: shorter side to 32, centre crop, normalised
    first = load_image(tmp_path / "val" / "cat" / "0.png", (3, 32, 32), data.mean, data.std)
    assert torch.allclose(first[0], xs[0][0], atol=1e-6)


def test_augmented_epochs_repeat_with_workers_or_without(tmp_path):
    root = make_folder(tmp_path)
    runs = []
    for workers in (0, 2):
        data = build_loaders("imagefolder", (3, 24, 24), 4, data_dir=root, augment=("crop", "flip", "pca:0.1"),
                             workers=workers, seed=7)
        data.train.set_epoch(3)
        runs.append(torch.cat([x for x, _ in data.train]))
    assert torch.equal(runs[0], runs[1])
    data.train.set_epoch(4)
    assert not torch.equal(torch.cat([x for x, _ in data.train]), runs[1])


def test_unreadable_images_are_reported_once_as_a_count_and_skipped(tmp_path, capsys):
    root = make_folder(tmp_path)
    for i in range(4):  # not images at all: left out when the folder is scanned
        (root / "train" / "cat" / f"broken{i}.jpg").write_bytes(b"not a jpeg")
    png = (root / "train" / "dog" / "0.png").read_bytes()
    (root / "train" / "dog" / "cut.png").write_bytes(png[: len(png) // 2])  # a good header, truncated pixels
    data = build_loaders("imagefolder", (3, 32, 32), 4, data_dir=root, workers=0)
    scan = capsys.readouterr().err.splitlines()
    assert scan == [f"cnnlab: warning: {root / 'train'}: 4 unreadable image file(s) left out "
                    "(broken0.jpg, broken1.jpg, broken2.jpg, ...)"]
    assert sum(len(y) for _, y in data.train) == 10 and data.train.skipped == {str(root / "train" / "dog" / "cut.png")}
    assert len(capsys.readouterr().err.splitlines()) == 1  # the truncated file: one line, the first time
    data.train.set_epoch(1)
    assert sum(len(y) for _, y in data.train) == 10
    assert capsys.readouterr().err == ""  # a second epoch does not warn again


def test_a_class_without_a_readable_image_and_a_single_class_are_refused(tmp_path):
    root = make_folder(tmp_path)
    (root / "train" / "bird").mkdir()
    (root / "train" / "bird" / "0.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CnnlabError, match="class folder\\(s\\) bird in .* hold no readable image"):
        build_loaders("imagefolder", (3, 32, 32), 4, data_dir=root, workers=0)
    single = make_folder(tmp_path / "single", classes=("cat",))
    with pytest.raises(CnnlabError, match="only the class folder cat: a classifier needs at least two"):
        build_loaders("imagefolder", (3, 32, 32), 4, data_dir=single, workers=0)


def _val_only_class(root):
    (root / "val" / "extra").mkdir()
    Image.new("RGB", (8, 8)).save(root / "val" / "extra" / "0.png")


@pytest.mark.parametrize("setup, message", [
    (lambda root: (root / "train").mkdir(parents=True), "no val/ folder"),
    (lambda root: [(root / p).mkdir(parents=True) for p in ("train", "val")], "class folder"),
    (lambda root: (make_folder(root), (root / "train" / "empty").mkdir()), "hold no readable image"),
    (lambda root: (make_folder(root), _val_only_class(root)), "same class folders"),
])
def test_folder_layout_errors(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(CnnlabError, match=message):
        build_loaders("imagefolder", (3, 32, 32), 4, data_dir=tmp_path, workers=0)


def test_needs_a_data_dir():
    with pytest.raises(CnnlabError, match="--data-dir"):
        build_loaders("imagefolder", (3, 32, 32), 4, workers=0)


def test_load_image_adapts_like_training(tmp_path):
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 255  # a "1"
    Image.fromarray(digit).save(tmp_path / "one.png")
    x = load_image(tmp_path / "one.png", (1, 32, 32), (0.1307,), (0.3081,), native_shape=(1, 28, 28))
    assert x.shape == (1, 1, 32, 32)
    background = (0 - 0.1307) / 0.3081
    assert torch.allclose(x[0, 0, :2], torch.full((2, 32), background))  # the 2-pixel pad of LeNet-5's input
    assert x[0, 0, 2 + 10, 2 + 13].item() == pytest.approx((1 - 0.1307) / 0.3081)
    with pytest.raises(CnnlabError, match="cannot read image"):
        (tmp_path / "bad.png").write_bytes(b"nope")
        load_image(tmp_path / "bad.png", (1, 32, 32), (0.5,), (0.5,))


def test_load_image_keeps_the_aspect_ratio_when_bringing_a_photo_to_cifar_size(tmp_path):
    photo = np.zeros((64, 128, 3), np.uint8)
    photo[:, 24:104] = 255  # white in the middle of a wide photo, black at the sides
    Image.fromarray(photo).save(tmp_path / "wide.png")
    x = load_image(tmp_path / "wide.png", (3, 32, 32), (0.0,) * 3, (1.0,) * 3, native_shape=(3, 32, 32))
    assert x.shape == (1, 3, 32, 32)
    assert x.min().item() > 0.99  # the centre 32x32 of the 32x64 resize is all white (a squash would show black)
