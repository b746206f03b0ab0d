"""Published normalization statistics of the named datasets, looked up without loading any images.

A model trained on a named dataset usually normalizes with that family's statistics; these are the
constants ``--norm-stats NAME`` (and the default on a named ``--data``) apply to a foreign model.
"""

from __future__ import annotations

from evalsuite.core.errors import UsageError
from evalsuite.data.base import DATASETS
from evalsuite.data.digits import digits_stats
from evalsuite.data.torchvision_sets import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    SVHN_MEAN,
    SVHN_STD,
)

Stats = tuple[tuple[float, ...], tuple[float, ...]]

_PUBLISHED: dict[str, Stats] = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
    "svhn": (SVHN_MEAN, SVHN_STD),
}


def stats_names() -> list[str]:
    """The datasets with standard statistics (the valid values of ``--norm-stats``)."""
    return sorted([*_PUBLISHED, "digits"])


def standard_stats(name: str) -> Stats | None:
    """(mean, std) per channel on the [0, 1] scale for a dataset name, or None if it has none."""
    if name == "digits":
        return digits_stats()
    return _PUBLISHED.get(name)


def require_standard_stats(name: str) -> Stats:
    """``standard_stats`` or a UsageError listing the names that have them."""
    found = standard_stats(name)
    if found is None:
        raise UsageError(
            f"no standard statistics for {name!r}; --norm-stats takes one of {', '.join(stats_names())}"
        )
    return found


_NEEDS_PATH = ("npz", "folder", "cifar10c", "cifar100c", "corrupt")


def named_datasets() -> list[str]:
    """Registered datasets that are a name alone (no path): what checkpoint metadata may name."""
    return [n for n in DATASETS.names() if n not in _NEEDS_PATH]


def is_registered_name(spec: str) -> bool:
    """True for a bare registered dataset name (``cifar10``, ``digits``); False for paths and ``kind:ARG``."""
    return spec in named_datasets()
