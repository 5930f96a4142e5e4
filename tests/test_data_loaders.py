"""The device loader: shapes, normalisation, determinism by (seed, epoch), DDP sharding, adaptation."""

import pytest
import torch

from cnnlab.data.info import DATASETS
from cnnlab.data.loaders import build_loaders, plan_batches
from cnnlab.data.readers import load_arrays
from cnnlab.errors import CnnlabError


@pytest.fixture(scope="module")
def digits():
    return build_loaders("digits", (1, 32, 32), 64, augment=("crop:2", "flip"), val_split=137, seed=3)


def _batches(loader, epoch):
    loader.set_epoch(epoch)
    return [(x.clone(), y.clone()) for x, y in loader]


def test_digits_split_sizes_and_batches(digits):
    d = digits.describe()
    assert (d["train_size"], d["val_size"], d["test_size"]) == (1300, 137, 360)
    assert len(digits.train) == -(-1300 // 64) and digits.train.num_samples == 1300
    assert len(digits.test) == -(-360 // 64) and digits.test.num_samples == 360
    x, y = next(iter(digits.train))
    assert x.shape == (64, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert d["adapt"] == ["resize 8x8 -> 32x32 (bilinear)"]


def test_test_set_is_never_augmented_and_keeps_file_order(digits):
    _, y_test, _ = load_arrays("digits", "test")
    ys = torch.cat([y for _, y in digits.test])
    assert torch.equal(ys, torch.from_numpy(y_test))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(_batches(digits.test, 0), _batches(digits.test, 5)))


def test_epoch_is_determined_by_seed_and_epoch_only(digits):
    first = _batches(digits.train, 4)
    _batches(digits.train, 1)  # anything in between must not matter
    again = _batches(digits.train, 4)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    other = _batches(digits.train, 5)
    assert not torch.equal(first[0][1], other[0][1])
    # every training image exactly once per epoch
    assert sorted(torch.cat([y for _, y in first]).tolist()) == sorted(torch.cat([y for _, y in other]).tolist())


def test_two_ranks_see_exactly_the_batches_of_one_process(digits):
    single = build_loaders("digits", (1, 32, 32), 64, augment=("crop:2", "flip"), val_split=137, seed=3)
    ranks = [build_loaders("digits", (1, 32, 32), 32, augment=("crop:2", "flip"), val_split=137, seed=3,
                           rank=r, world_size=2) for r in range(2)]
    one = _batches(single.train, 2)
    two = [_batches(r.train, 2) for r in ranks]
    assert len(two[0]) == len(two[1]) == len(one)
    for (x, y), (x0, y0), (x1, y1) in zip(one, *two):
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)


def test_plan_batches_shards_cover_the_epoch():
    # 10 images, batch 2 per rank, 3 ranks: global batches of 6 and 4; the 4 split 2/1/1
    plans = [plan_batches(10, 2, r, 3, drop_uneven=False) for r in range(3)]
    assert [[hi - lo for _, lo, hi, _ in p] for p in plans] == [[2, 2], [2, 1], [2, 1]]
    covered = sorted(s + i for p in plans for s, lo, hi, _ in p for i in range(lo, hi))
    assert covered == list(range(10))
    # training: 11 images, batch 2 per rank, 3 ranks: the last 5 give each rank 1 (2 sit the epoch out)
    assert [plan_batches(11, 2, r, 3) for r in range(3)] == [[(0, 0, 2, 6), (6, 0, 1, 5)],
                                                             [(0, 2, 4, 6), (6, 1, 2, 5)],
                                                             [(0, 4, 6, 6), (6, 2, 3, 5)]]
    assert plan_batches(7, 3, 0, 2) == [(0, 0, 3, 6)]  # a last global batch smaller than W is left out


def test_normalisation_uses_the_official_constants(digits):
    assert digits.mean == DATASETS["digits"].mean and digits.std == DATASETS["digits"].std
    x_train, _, _ = load_arrays("digits", "train")
    scaled = x_train / 255.0
    assert scaled.mean() == pytest.approx(DATASETS["digits"].mean[0], abs=1e-4)
    assert scaled.std() == pytest.approx(DATASETS["digits"].std[0], abs=1e-4)


def test_grey_repeated_to_three_channels_for_a_colour_model():
    loaders = build_loaders("digits", (3, 8, 8), 16)
    x, _ = next(iter(loaders.test))
    assert x.shape == (16, 3, 8, 8) and torch.equal(x[:, 0], x[:, 2])
    assert loaders.describe()["adapt"] == ["grey repeated to 3 channels"]
    assert loaders.mean == DATASETS["digits"].mean * 3


def test_bad_arguments_are_user_errors():
    with pytest.raises(CnnlabError, match="batch size"):
        build_loaders("digits", (1, 8, 8), 0)
    with pytest.raises(CnnlabError, match="bad augmentation"):
        build_loaders("digits", (1, 8, 8), 8, augment=("rotate",))
    with pytest.raises(CnnlabError, match="colour"):
        build_loaders("digits", (1, 8, 8), 8, augment=("pca:0.1",))
    with pytest.raises(CnnlabError, match="did you mean 'mnist'"):
        build_loaders("mnits", (1, 28, 28), 8)
    with pytest.raises(CnnlabError, match="--val-split 5000 must be a whole count of images in 1..1,436"):
        build_loaders("digits", (1, 8, 8), 8, val_split=5000)
    with pytest.raises(CnnlabError, match="--val-split 0.0001 holds out .* = 0 images"):  # a fraction it would not honour
        build_loaders("digits", (1, 8, 8), 8, val_split=0.0001)
    with pytest.raises(CnnlabError, match="whole count"):
        build_loaders("digits", (1, 8, 8), 8, val_split=2.5)


def test_validation_split_as_a_fraction_or_a_tiny_count():
    assert build_loaders("digits", (1, 8, 8), 8, val_split=0.1).describe()["val_size"] == 144
    tiny = build_loaders("digits", (1, 8, 8), 8, val_split=3)  # fewer than the 10 classes: not stratified
    assert tiny.describe()["val_size"] == 3 and tiny.describe()["train_size"] == 1434


def test_ranks_split_the_test_set_exactly_once():
    ranks = [build_loaders("digits", (1, 8, 8), 16, rank=r, world_size=3, eval_batch_size=100) for r in range(3)]
    assert [r.test.num_samples for r in ranks] == [120, 120, 120]
    seen = torch.cat([y for r in ranks for _, y in r.test])
    _, y_test, _ = load_arrays("digits", "test")
    assert sorted(seen.tolist()) == sorted(y_test.tolist())  # 360 images, each exactly once
    # training: 1,437 = 29 global batches of 48, then 45: 15 per rank
    assert [r.train.num_samples for r in ranks] == [29 * 16 + 15] * 3
