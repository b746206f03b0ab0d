"""Your own images: ``npz:PATH`` (arrays) and ``folder:PATH`` (one subfolder of image files per class).

Both ignore the split: the file is the set, so ``--split train`` and ``--split test`` read the same images.
They have no published normalization statistics (``mean``/``std`` are None): a model evaluated on them
brings its own, or the user names them (``--mean/--std``, ``--no-normalize``, ``--norm-stats DATASET``).
``channel_stats`` measures them for training only, where a training set's own statistics are the right ones.
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from evalsuite.core.errors import DataError, UsageError
from evalsuite.data.base import DATASETS, DatasetOptions, ImageSet

log = logging.getLogger(__name__)

_CHANNELS = (1, 3)


def channel_stats(x: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of images ``[N, C, H, W]`` (uint8 0..255 or float [0, 1]) on the [0, 1] scale.

    Accumulates in float64 over chunks of images, so a 50,000-image set never becomes one float copy.
    """
    c = x.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for start in range(0, x.shape[0], chunk):
        part = x[start : start + chunk].double()
        if x.dtype == torch.uint8:
            part = part / 255.0
        total += part.sum(dim=(0, 2, 3))
        total_sq += part.square().sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0.0).sqrt()
    std = torch.where(std < 1e-6, torch.ones_like(std), std)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def check_shape(shape: tuple[int, int, int] | None, what: str) -> tuple[int, int, int] | None:
    """Validate a requested ``(C, H, W)``: C is 1 or 3, H and W positive."""
    if shape is None:
        return None
    if len(shape) != 3:
        raise UsageError(f"{what}: shape must be (C, H, W), got {tuple(shape)}")
    c, h, w = (int(v) for v in shape)
    if c not in _CHANNELS or h <= 0 or w <= 0:
        raise UsageError(f"{what}: shape must be (C, H, W) with C in {_CHANNELS} and H, W > 0, got {shape}")
    return c, h, w


def _path(kind: str, arg: str) -> Path:
    if not arg:
        raise UsageError(f"'{kind}' needs a path: '{kind}:PATH'")
    return Path(arg).expanduser()


@DATASETS.register("npz", help="npz:PATH, arrays x (uint8 [N,H,W,C] or float [N,C,H,W] in [0,1]), y, classes")
def load_npz(arg: str, split: str, opts: DatasetOptions) -> ImageSet:
    """Images from a ``.npz``: ``x`` uint8 ``[N, H, W, C]`` (channels-last, as saved from PIL/numpy) or float
    ``[N, C, H, W]`` in [0, 1]; ``y`` integer ``[N]``; optional ``classes`` string ``[K]``.

    uint8 comes back as uint8 ``[N, C, H, W]``, float as float32. C must be 1 or 3, which also catches a
    uint8 array saved channels-first. ``num_classes`` is ``len(classes)`` if given, else ``max(y) + 1``.
    """
    path = _path("npz", arg)
    where = f"npz file {path}"
    if not path.is_file():
        raise DataError(f"{where} not found")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    # np.load guesses the format from these bytes and calls anything else a pickle, a confusing message
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        raise DataError(f"{where} is not an .npz archive (made by numpy.savez or savez_compressed)")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataError(f"{where} is a single .npy array, not an .npz archive with x and y")
        with loaded as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                raise DataError(
                    f"{where} lacks key(s) {', '.join(missing)} (has: {', '.join(f.files) or 'none'})"
                )
            x_np, y_np = f["x"], f["y"]
            classes_np = f["classes"] if "classes" in f.files else None
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        # ValueError is also what allow_pickle=False raises for object arrays
        detail = str(err).replace("\n", " ")
        raise DataError(f"{where} is not a readable .npz ({type(err).__name__}: {detail})") from None

    if x_np.ndim != 4:
        raise DataError(f"{where}: x must be 4-d, got shape {x_np.shape}")
    if x_np.shape[0] == 0:
        raise DataError(f"{where}: x holds no images")
    if x_np.dtype == np.uint8:
        if x_np.shape[3] not in _CHANNELS:
            raise DataError(
                f"{where}: uint8 x must be channels-last [N, H, W, C] with C in {_CHANNELS}, got {x_np.shape}"
            )
        x = torch.from_numpy(np.ascontiguousarray(x_np.transpose(0, 3, 1, 2)))
    elif np.issubdtype(x_np.dtype, np.floating):
        if x_np.shape[1] not in _CHANNELS:
            raise DataError(
                f"{where}: float x must be channels-first [N, C, H, W], C in {_CHANNELS}, got {x_np.shape}"
            )
        if not np.isfinite(x_np).all():
            raise DataError(f"{where}: x contains NaN or infinite values")
        lo, hi = float(x_np.min()), float(x_np.max())
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"{where}: float x must lie in [0, 1], got [{lo:g}, {hi:g}] (uint8 0..255 is accepted)"
            )
        x = torch.from_numpy(np.ascontiguousarray(x_np, dtype=np.float32))
    else:
        raise DataError(f"{where}: x must be uint8 or float, got {x_np.dtype}")

    if not np.issubdtype(y_np.dtype, np.integer):
        raise DataError(f"{where}: y must be integer labels, got {y_np.dtype}")
    if y_np.ndim != 1 or y_np.shape[0] != x.shape[0]:
        raise DataError(f"{where}: y must be [N] = [{x.shape[0]}], got shape {y_np.shape}")
    if int(y_np.min()) < 0:
        raise DataError(f"{where}: y has negative labels")
    y = torch.from_numpy(y_np.astype(np.int64))

    classes: tuple[str, ...] | None = None
    num_classes = int(y_np.max()) + 1
    if classes_np is not None:
        if classes_np.ndim != 1 or classes_np.dtype.kind not in "US":
            raise DataError(
                f"{where}: classes must be a 1-d string array, got {classes_np.dtype} {classes_np.shape}"
            )
        classes = tuple(c.decode() if isinstance(c, bytes) else str(c) for c in classes_np.tolist())
        if num_classes > len(classes):
            raise DataError(
                f"{where}: y has label {num_classes - 1} but classes lists only {len(classes)} names"
            )
        num_classes = len(classes)

    log.info("loaded %s: %d images %s", where, len(x), tuple(x.shape[1:]))
    return ImageSet(f"npz:{arg}", split, x, y, num_classes, None, None, classes=classes)


@DATASETS.register("folder", help="folder:PATH, torchvision ImageFolder layout PATH/CLASS/IMAGE, equal sizes")
def load_folder(arg: str, split: str, opts: DatasetOptions) -> ImageSet:
    """Every image under ``PATH/CLASS/`` as uint8 ``[N, C, H, W]``, labels by sorted class-folder name.

    Images must share one size unless ``opts.shape`` asks for ``(C, H, W)``, in which case each is resized
    to H x W (bilinear) and made grey for C = 1. Without a shape the images are read as RGB, C = 3.
    """
    from PIL import Image
    from torchvision.datasets import ImageFolder

    path = _path("folder", arg)
    where = f"image folder {path}"
    shape = check_shape(opts.shape, where)
    if not path.is_dir():
        raise DataError(f"{where} not found")
    try:
        ds = ImageFolder(str(path))
    except (FileNotFoundError, ValueError) as err:
        raise DataError(f"{where}: {err} (expected PATH/CLASS_NAME/IMAGE files)") from None

    mode = "L" if shape is not None and shape[0] == 1 else "RGB"
    arrays: list[np.ndarray] = []
    first: tuple[int, int] | None = None
    for file, _ in ds.samples:
        try:
            with Image.open(file) as src:
                img = src.convert(mode)
                if shape is not None:
                    img = img.resize((shape[2], shape[1]), Image.Resampling.BILINEAR)
                arr = np.asarray(img, dtype=np.uint8)
        except OSError as err:
            raise DataError(f"{where}: cannot read image {file} ({err})") from None
        hw = (arr.shape[0], arr.shape[1])
        if first is None:
            first = hw
        elif hw != first:
            raise DataError(
                f"{where}: {file} is {hw[0]}x{hw[1]} but earlier images are {first[0]}x{first[1]}; "
                "resize them, or request a shape to resize on load"
            )
        arrays.append(arr if arr.ndim == 3 else arr[:, :, None])

    # PIL gives [H, W, C]; the package works in [N, C, H, W]
    x = torch.from_numpy(np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2)))
    y = torch.tensor(ds.targets, dtype=torch.int64)
    log.info("loaded %s: %d images %s", where, len(x), tuple(x.shape[1:]))
    return ImageSet(f"folder:{arg}", split, x, y, len(ds.classes), None, None, classes=tuple(ds.classes))
