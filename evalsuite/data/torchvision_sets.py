"""CIFAR-10, CIFAR-100 and SVHN through the real torchvision dataset classes, held as uint8 tensors.

Files live under the data root: ``--data-root`` (``DatasetOptions.root``), else ``$EVALSUITE_DATA``, else
``~/.cache/evalsuite/data``. The on-disk layout is torchvision's own, so a root shared with other
torchvision code is reused as is: ``ROOT/cifar-10-batches-py/``, ``ROOT/cifar-100-python/``,
``ROOT/test_32x32.mat`` and ``ROOT/train_32x32.mat``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evalsuite.core.errors import DataError, UsageError
from evalsuite.data.base import DATASETS, DatasetOptions, ImageSet

log = logging.getLogger(__name__)

DATA_ROOT_ENV = "EVALSUITE_DATA"
DEFAULT_DATA_ROOT = Path("~/.cache/evalsuite/data")

# Per-channel statistics of each training set on the [0, 1] scale, the values models trained on them store.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
SVHN_MEAN = (0.4377, 0.4438, 0.4728)
SVHN_STD = (0.1980, 0.2010, 0.1970)

_FIX = "pass --download to fetch it, or --data-root to point elsewhere"


def data_root(opts: DatasetOptions) -> Path:
    """The folder torchvision datasets live in: ``opts.root``, else ``$EVALSUITE_DATA``, else the cache."""
    if opts.root is not None:
        return Path(opts.root).expanduser()
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env).expanduser() if env else DEFAULT_DATA_ROOT.expanduser()


@dataclass(frozen=True)
class _Family:
    name: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


_CIFAR10 = _Family("cifar10", 10, CIFAR10_MEAN, CIFAR10_STD)
_CIFAR100 = _Family("cifar100", 100, CIFAR100_MEAN, CIFAR100_STD)
_SVHN = _Family("svhn", 10, SVHN_MEAN, SVHN_STD)


def _no_argument(fam: _Family, arg: str) -> None:
    if arg:
        raise UsageError(f"{fam.name!r} takes no argument, got '{fam.name}:{arg}'")


def _construct(
    fam: _Family, root: Path, expected: str, files: list[Path], build: Callable[[], Any], download: bool
) -> Any:
    """Call ``build()`` (a torchvision constructor) and turn its failures into one-line DataErrors."""
    try:
        return build()
    except Exception as err:  # torchvision signals missing and corrupt files alike with a bare RuntimeError
        missing = [f for f in files if not f.is_file()]
        if isinstance(err, RuntimeError) and "corrupted" in str(err):
            detail = "checksum mismatch"  # torchvision's text would advise download=True, not our flag
        else:
            detail = f"{type(err).__name__}: {err}".replace("\n", " ")
        if missing and download:
            raise DataError(
                f"{fam.name} could not be downloaded to {root} ({detail}); "
                f"check the network, or place {expected} there yourself"
            ) from err
        if len(missing) == len(files):
            raise DataError(f"{fam.name} not found under {root} (expected {expected}); {_FIX}") from err
        if missing:
            names = ", ".join(str(f.relative_to(root)) for f in missing)
            raise DataError(f"{fam.name} under {root} is incomplete (missing {names}); {_FIX}") from err
        raise DataError(
            f"{fam.name} files under {root} ({expected}) are corrupted or unreadable ({detail}); "
            "delete them and pass --download to fetch them again"
        ) from err


def _labels(fam: _Family, labels: Any, n: int, where: Path) -> torch.Tensor:
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64).reshape(-1)
    if y.numel() != n or (n and (int(y.min()) < 0 or int(y.max()) >= fam.num_classes)):
        raise DataError(f"{fam.name} files under {where} are corrupted: labels do not match the images")
    return y


def _load_cifar(fam: _Family, cls: Any, split: str, opts: DatasetOptions) -> ImageSet:
    root = data_root(opts)
    folder = root / cls.base_folder
    names = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    files = [folder / n for n in names]
    build = partial(cls, root=str(root), train=split == "train", download=opts.download)
    ds = _construct(fam, root, f"{cls.base_folder}/", files, build, opts.download)
    data = np.asarray(ds.data)
    if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1:] != (32, 32, 3):
        raise DataError(f"{fam.name} files under {folder} are corrupted: images {data.dtype} {data.shape}")
    # torchvision holds CIFAR channels-last [N, 32, 32, 3]; the package works in [N, C, H, W]
    x = torch.from_numpy(np.ascontiguousarray(data.transpose(0, 3, 1, 2)))
    y = _labels(fam, ds.targets, len(x), folder)
    classes = tuple(str(c) for c in ds.classes)
    if len(classes) != fam.num_classes:
        raise DataError(
            f"{fam.name} metadata under {folder} lists {len(classes)} classes, not {fam.num_classes}"
        )
    log.info("loaded %s %s: %d images from %s", fam.name, split, len(x), folder)
    return ImageSet(fam.name, split, x, y, fam.num_classes, fam.mean, fam.std, classes=classes)


@DATASETS.register("cifar10", help="torchvision CIFAR-10, 32x32 RGB, 10 classes (--download fetches it)")
def load_cifar10(arg: str, split: str, opts: DatasetOptions) -> ImageSet:
    """CIFAR-10 ``split``: uint8 ``[N, 3, 32, 32]``, N = 50,000 (train) or 10,000 (test)."""
    from torchvision.datasets import CIFAR10

    _no_argument(_CIFAR10, arg)
    return _load_cifar(_CIFAR10, CIFAR10, split, opts)


@DATASETS.register(
    "cifar100", help="torchvision CIFAR-100, 32x32 RGB, 100 fine classes (--download fetches it)"
)
def load_cifar100(arg: str, split: str, opts: DatasetOptions) -> ImageSet:
    """CIFAR-100 ``split`` with the 100 fine labels: uint8 ``[N, 3, 32, 32]``."""
    from torchvision.datasets import CIFAR100

    _no_argument(_CIFAR100, arg)
    return _load_cifar(_CIFAR100, CIFAR100, split, opts)


@DATASETS.register(
    "svhn", help="torchvision SVHN cropped digits, 32x32 RGB, 10 classes (--download fetches it)"
)
def load_svhn(arg: str, split: str, opts: DatasetOptions) -> ImageSet:
    """SVHN ``split`` ('train' or 'test'; 'extra' is not offered): uint8 ``[N, 3, 32, 32]``.

    The files label digit 0 as 10; torchvision maps it to 0, so labels are the digits themselves.
    """
    from torchvision.datasets import SVHN

    _no_argument(_SVHN, arg)
    root = data_root(opts)
    filename = SVHN.split_list[split][1]
    build = partial(SVHN, root=str(root), split=split, download=opts.download)
    ds = _construct(_SVHN, root, filename, [root / filename], build, opts.download)
    data = np.asarray(ds.data)  # torchvision already transposed the .mat's [32, 32, 3, N] to [N, 3, 32, 32]
    if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1:] != (3, 32, 32):
        raise DataError(f"svhn file {root / filename} is corrupted: images {data.dtype} {data.shape}")
    x = torch.from_numpy(np.ascontiguousarray(data))
    y = _labels(_SVHN, ds.labels, len(x), root / filename)
    log.info("loaded svhn %s: %d images from %s", split, len(x), root / filename)
    classes = tuple(str(i) for i in range(10))
    return ImageSet("svhn", split, x, y, 10, _SVHN.mean, _SVHN.std, classes=classes)
