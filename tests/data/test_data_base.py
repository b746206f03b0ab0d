"""``stratified_subset``, spec parsing in ``load_dataset`` and the embedded digits split."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from evalsuite.core.errors import UsageError
from evalsuite.data import ImageSet, load_dataset, stratified_subset


def _sorted_set(counts: list[int]) -> ImageSet:
    """Class-sorted labels (the worst case for a prefix); pixel value = example index, to check pairing."""
    y = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in enumerate(counts)])
    x = torch.arange(len(y), dtype=torch.float32).view(-1, 1, 1, 1)
    return ImageSet("toy", "test", x, y, len(counts), (0.0,), (1.0,))


def test_subset_keeps_class_proportions() -> None:
    data = _sorted_set([60, 30, 10])
    sub = stratified_subset(data, 20, seed=0)
    assert Counter(sub.y.tolist()) == {0: 12, 1: 6, 2: 2}
    # images stay paired with their labels, and no example is drawn twice
    idx = sub.x.flatten().long()
    assert torch.equal(data.y[idx], sub.y) and len(set(idx.tolist())) == 20
    assert sub.subset == {"limit": 20, "seed": 0, "of": 100, "method": "stratified"}


def test_subset_remainder_goes_to_largest_fraction() -> None:
    sub = stratified_subset(_sorted_set([34, 33, 33]), 10, seed=1)
    assert Counter(sub.y.tolist()) == {0: 4, 1: 3, 2: 3}


def test_subset_is_not_a_sorted_prefix() -> None:
    data = _sorted_set([50, 50])
    sub = stratified_subset(data, 10, seed=0)
    labels = sub.y.tolist()
    assert labels != sorted(labels)  # shuffled across classes
    assert set(labels[:5]) == {0, 1} or set(labels[5:]) == {0, 1}
    assert not torch.equal(sub.x.flatten().long().sort().values, torch.arange(10))


def test_subset_seeded() -> None:
    data = _sorted_set([40, 40, 20])
    a, b = stratified_subset(data, 25, seed=3), stratified_subset(data, 25, seed=3)
    c = stratified_subset(data, 25, seed=4)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
    assert Counter(a.y.tolist()) == Counter(c.y.tolist())


def test_subset_edges() -> None:
    data = _sorted_set([3, 3])
    assert stratified_subset(data, 6) is data
    assert stratified_subset(data, 100) is data
    with pytest.raises(UsageError):
        stratified_subset(data, 0)


def test_digits_split() -> None:
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    assert len(train) == 1347 and len(test) == 450
    assert test.x.shape == (450, 1, 8, 8) and test.x.dtype == torch.float32
    assert float(test.x.min()) >= 0.0 and float(test.x.max()) <= 1.0
    assert test.num_classes == 10 and train.mean == test.mean
    full = Counter(train.y.tolist()) + Counter(test.y.tolist())
    for c, n in Counter(test.y.tolist()).items():
        assert abs(n - 0.25 * full[c]) <= 1  # stratified: each class split 3:1
    with pytest.raises(UsageError):
        load_dataset("digits:x")


def test_load_dataset_parses_spec() -> None:
    with pytest.raises(UsageError, match="did you mean cifar10"):
        load_dataset("cifar01")
    with pytest.raises(UsageError, match="split"):
        load_dataset("digits", split="val")
    assert load_dataset("uniform:3", shape=(1, 2, 4)).x.shape == (3, 1, 2, 4)


def test_standard_statistics_are_published_constants_never_measured() -> None:
    from evalsuite.data import (
        CIFAR10_MEAN,
        CIFAR10_STD,
        is_registered_name,
        require_standard_stats,
        standard_stats,
        stats_names,
    )
    from evalsuite.data.digits import digits_stats

    assert standard_stats("cifar10") == (CIFAR10_MEAN, CIFAR10_STD)
    assert standard_stats("digits") == digits_stats()
    assert standard_stats("npz") is None and standard_stats("gaussian") is None
    assert stats_names() == ["cifar10", "cifar100", "digits", "svhn"]
    with pytest.raises(UsageError, match="cifar10, cifar100, digits, svhn"):
        require_standard_stats("mnist")
    assert is_registered_name("cifar10") and is_registered_name("digits")
    for spec in ("folder:/usr", "npz:/x.npz", "npz", "folder", "/usr", "cifar10:x", "bogus", ""):
        assert not is_registered_name(spec), spec


def test_digits_equal_scikit_learns_split() -> None:
    """The stored split and the csv reader give exactly what load_digits + train_test_split give."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from evalsuite.data.digits import DIGITS_SPLIT_SEED, DIGITS_TEST_FRACTION

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, d.target, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=d.target
    )
    train, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    assert np.array_equal(train.x.numpy(), x_tr) and np.array_equal(test.x.numpy(), x_te)
    assert np.array_equal(train.y.numpy(), y_tr) and np.array_equal(test.y.numpy(), y_te)


def test_digits_load_without_importing_sklearn() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from evalsuite.data import load_dataset; load_dataset('digits'); "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
