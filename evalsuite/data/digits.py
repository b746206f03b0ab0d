"""The embedded default: scikit-learn's handwritten digits (1,797 8x8 images, 10 classes), no download.

The images are read from the file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``, what
``load_digits`` reads) and split by the index lists in ``digits_split.npz``: the output of
``train_test_split(arange(1797), test_size=0.25, random_state=0, stratify=target)``, stored so that loading
needs no ``import sklearn`` (over a second of start-up) and stays the split the committed checkpoints were
trained on; a test recomputes it with scikit-learn.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from evalsuite.core.errors import DataError, UsageError
from evalsuite.data.base import DATASETS, DatasetOptions, ImageSet

DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0


SPLIT_FILE = Path(__file__).with_name("digits_split.npz")


def digits_csv() -> Path:
    """scikit-learn's copy of the UCI digits (found without importing scikit-learn)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the embedded digits come with scikit-learn, which is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise DataError(f"scikit-learn's digits file is missing: {path}")
    return path


@lru_cache(maxsize=1)
def _digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = np.loadtxt(digits_csv(), delimiter=",", dtype=np.float64)
    # pixel values are 0..16 counts; /16 puts them in [0, 1]
    x = (data[:, :-1].reshape(-1, 8, 8).astype(np.float32) / 16.0)[:, None, :, :]
    y = data[:, -1].astype(np.int64)
    with np.load(SPLIT_FILE) as split:
        train, test = split["train"].astype(np.int64), split["test"].astype(np.int64)
    return x[train], x[test], y[train], y[test]


@lru_cache(maxsize=1)
def digits_stats() -> tuple[tuple[float], tuple[float]]:
    """Mean and std of the training split, the normalization stored in digits models."""
    x_tr = _digits_split()[0]
    return (float(x_tr.mean()),), (float(x_tr.std()),)


@DATASETS.register(
    "digits", help="embedded: scikit-learn handwritten digits, 8x8 grey, 10 classes, no download"
)
def load_digits_set(arg: str, split: str, opts: DatasetOptions) -> ImageSet:
    """The scikit-learn digits train or test split as an ImageSet with its stored statistics."""
    if arg:
        raise UsageError(f"'digits' takes no argument, got 'digits:{arg}'")
    x_tr, x_te, y_tr, y_te = _digits_split()
    x, y = (x_tr, y_tr) if split == "train" else (x_te, y_te)
    mean, std = digits_stats()
    return ImageSet(
        name="digits",
        split=split,
        x=torch.from_numpy(x.copy()),
        y=torch.from_numpy(y.copy()),
        num_classes=10,
        mean=mean,
        std=std,
        classes=tuple(str(i) for i in range(10)),
    )
