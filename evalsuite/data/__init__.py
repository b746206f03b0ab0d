"""Dataset specs -> images in [0, 1] and labels.

Specs: ``digits`` (embedded), ``cifar10``, ``cifar100``, ``svhn`` (torchvision), ``npz:PATH``,
``folder:PATH``, and offline OOD sets. ``load_dataset(spec, split)`` returns an ``ImageSet``.
"""

from evalsuite.data import digits as _digits  # noqa: F401  (registers)
from evalsuite.data.base import DATASETS, DatasetOptions, ImageSet, load_dataset, stratified_subset, to_float_images

__all__ = ["DATASETS", "DatasetOptions", "ImageSet", "load_dataset", "stratified_subset", "to_float_images"]
