"""Dataset specs -> images in [0, 1] and labels.

Specs: ``digits`` (embedded), ``cifar10``, ``cifar100``, ``svhn`` (torchvision), ``npz:PATH``,
``folder:PATH``, and the offline OOD sets ``gaussian[:N]``, ``uniform[:N]``, ``photos[:N]``.
``load_dataset(spec, split)`` returns an ``ImageSet``.
"""

from evalsuite.data import corruptions as _corruptions  # noqa: F401  (registers)
from evalsuite.data import digits as _digits  # noqa: F401  (registers)
from evalsuite.data import files as _files  # noqa: F401  (registers)
from evalsuite.data import ood_sets as _ood_sets  # noqa: F401  (registers)
from evalsuite.data import torchvision_sets as _torchvision_sets  # noqa: F401  (registers)
from evalsuite.data.base import (
    DATASETS,
    DatasetOptions,
    ImageSet,
    load_dataset,
    stratified_subset,
    to_float_images,
)
from evalsuite.data.files import channel_stats
from evalsuite.data.stats import (
    is_registered_name,
    named_datasets,
    require_standard_stats,
    standard_stats,
    stats_names,
)
from evalsuite.data.torchvision_sets import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    DATA_ROOT_ENV,
    DEFAULT_DATA_ROOT,
    SVHN_MEAN,
    SVHN_STD,
    data_root,
)

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DATASETS",
    "DATA_ROOT_ENV",
    "DEFAULT_DATA_ROOT",
    "SVHN_MEAN",
    "SVHN_STD",
    "DatasetOptions",
    "ImageSet",
    "channel_stats",
    "data_root",
    "is_registered_name",
    "load_dataset",
    "named_datasets",
    "require_standard_stats",
    "standard_stats",
    "stats_names",
    "stratified_subset",
    "to_float_images",
]
