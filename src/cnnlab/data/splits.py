"""Train/test index splits drawn exactly as scikit-learn's `train_test_split` draws them, without
importing it (0.9 s of every command that splits): the digits test split and `--val-split`'s
hold-outs stay the images they always were. Hand-written for that speed; the tests compare every
draw with scikit-learn's own."""

from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: the draws of scikit-learn's stratified `train_test_split(..., stratify=labels,
    random_state=seed)` (its StratifiedShuffleSplit), in the same order from the same RandomState."""
    rng = np.random.RandomState(seed)
    classes, y = np.unique(labels, return_inverse=True)
    counts = np.bincount(y)
    n_train = len(labels) - test_size
    train_counts = _approximate_mode(counts, n_train, rng)
    test_counts = _approximate_mode(counts - train_counts, test_size, rng)
    members = np.split(np.argsort(y, kind="mergesort"), np.cumsum(counts)[:-1])
    train, test = [], []
    for k in range(len(classes)):
        drawn = members[k][rng.permutation(counts[k])]
        train.extend(drawn[: train_counts[k]])
        test.extend(drawn[train_counts[k]: train_counts[k] + test_counts[k]])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Per-class shares of `draws` proportional to `counts`: the floors, then one more for the
    classes with the largest remainders (ties broken at random), as scikit-learn allocates them."""
    exact = counts * draws / counts.sum()
    shares = np.floor(exact)
    missing = draws - int(shares.sum())
    remainder = exact - shares
    for value in np.sort(np.unique(remainder))[::-1]:
        if missing <= 0:
            break
        tied = np.flatnonzero(remainder == value)
        chosen = rng.choice(tied, size=min(len(tied), missing), replace=False)
        shares[chosen] += 1
        missing -= len(chosen)
    return shares.astype(np.int64)


def shuffled_split(n: int, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: scikit-learn's unstratified draw (its ShuffleSplit), one permutation
    of RandomState(seed) whose first `test_size` entries are the test part."""
    order = np.random.RandomState(seed).permutation(n)
    return order[test_size:], order[:test_size]


def can_stratify(labels: np.ndarray, test_size: int) -> bool:
    """Whether scikit-learn's stratified split takes these: every class has at least two images,
    and each part at least as many images as there are classes."""
    counts = np.unique(labels, return_counts=True)[1]
    return counts.min() >= 2 and min(test_size, len(labels) - test_size) >= len(counts)
