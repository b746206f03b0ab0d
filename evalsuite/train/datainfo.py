"""What building a network needs to know about its dataset, without reading a single image.

A model needs the number of classes, the input shape and the normalization statistics; a random mask
needs only the model. For the torchvision families these are fixed facts (the statistics are the ones
their loaders store), so ``evalsuite init --dataset cifar10 --sparse-init erk`` works on a machine with
no CIFAR on disk. Other specs (``digits``, which is embedded, ``npz:``, ``folder:``) are read, since
their statistics come from their files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evalsuite.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    SVHN_MEAN,
    SVHN_STD,
    ImageSet,
    load_dataset,
)


@dataclass(frozen=True)
class DatasetInfo:
    """num_classes, input shape ``(C, H, W)`` and per-channel normalization of a dataset's training split."""

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of(cls, data: ImageSet) -> DatasetInfo:
        """The info of a loaded ImageSet, with its published or measured training statistics."""
        mean, std = data.training_stats()  # published statistics, else measured on this training set
        return cls(data.name, data.num_classes, data.input_shape, tuple(mean), tuple(std))


KNOWN: dict[str, DatasetInfo] = {
    "cifar10": DatasetInfo("cifar10", 10, (3, 32, 32), CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": DatasetInfo("cifar100", 100, (3, 32, 32), CIFAR100_MEAN, CIFAR100_STD),
    "svhn": DatasetInfo("svhn", 10, (3, 32, 32), SVHN_MEAN, SVHN_STD),
}
"""The torchvision families: the same numbers their loaders put in every ImageSet."""


def dataset_info(spec: str, root: str | Path | None = None, download: bool = False) -> DatasetInfo:
    """Metadata of ``spec``'s training split: from ``KNOWN`` without touching the disk, else by loading it."""
    if spec in KNOWN:
        return KNOWN[spec]
    return DatasetInfo.of(load_dataset(spec, "train", root, download))
