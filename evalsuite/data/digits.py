"""The embedded default: scikit-learn's handwritten digits (1,797 8x8 images, 10 classes), no download."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from evalsuite.core.errors import UsageError
from evalsuite.data.base import DATASETS, DatasetOptions, ImageSet

DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0


@lru_cache(maxsize=1)
def _digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    # pixel values are 0..16 counts; /16 puts them in [0, 1]
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=y
    )
    return x_tr, x_te, y_tr, y_te


@lru_cache(maxsize=1)
def digits_stats() -> tuple[tuple[float], tuple[float]]:
    """Mean and std of the training split, the normalization stored in digits models."""
    x_tr = _digits_split()[0]
    return (float(x_tr.mean()),), (float(x_tr.std()),)


@DATASETS.register(
    "digits", help="embedded: scikit-learn handwritten digits, 8x8 grey, 10 classes, no download"
)
def load_digits_set(arg: str, split: str, opts: DatasetOptions) -> ImageSet:
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
