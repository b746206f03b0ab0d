"""Common corruptions: the official CIFAR-10-C / CIFAR-100-C files, and corruptions generated from any set.

Specs
-----
``cifar10c:ROOT`` / ``cifar100c:ROOT``
    Hendrycks & Dietterich's files: ``ROOT/<corruption>.npy`` uint8 ``[5n, 32, 32, 3]`` (severities 1..5
    stacked in order, n = 10,000 images each) and ``ROOT/labels.npy`` ``[5n]``. ROOT may also be the folder
    that holds ``CIFAR-10-C/`` (what the official tar extracts to); without ROOT the data root is used
    (``--data-root``, ``$EVALSUITE_DATA``, ``~/.cache/evalsuite/data``). Files are memory-mapped, so the
    sets of 19 x 50,000 images are read from disk as batches need them. ``--download`` fetches the official
    tar from Zenodo (2.9 GB, md5-checked) when the files are absent.
``corrupt:SPEC``
    Any other dataset spec (``corrupt:digits``, ``corrupt:npz:PATH``) corrupted here with the
    ``imagecorruptions`` package (Michaelis et al. 2019): the ImageNet-C corruption functions and parameters,
    which differ from the re-tuned 32x32 parameters CIFAR-10-C was made with, so ``corrupt:cifar10`` is not
    CIFAR-10-C. Generated in memory; ``write_corruption_folder`` writes the same images in the CIFAR-10-C
    layout (chunked, resumable), which later runs read back as ``cifar10c:FOLDER``.

A selector after ``#`` picks corruptions and severities: ``cifar10c:ROOT#fog:3``,
``corrupt:digits#noise:1,5``, ``#fog,snow`` (all severities). Names are corruptions or groups
(``common`` = the 15 benchmark ones, ``extra`` = the 4 held-out ones, ``all``, ``noise``, ``blur``,
``weather``, ``digital``). ``load_dataset`` returns the selected sets concatenated;
``load_corruption_sets`` returns one ``CorruptionSet`` per (corruption, severity), which is what the
battery scores.

Generated corruptions, exactly
------------------------------
- Images are quantized to uint8 first (float [0, 1] x 255, rounded), as the package needs.
- Grey images are replicated to RGB, corrupted, and turned back to grey with ITU-R 601 luma (PIL's "L");
  corruptions that draw noise per channel come back with about 0.67x the noise std.
- Images under 32 px on a side (the package's minimum; digits are 8x8) are enlarged by an integer factor k
  by pixel repetition, corrupted, and reduced by taking the centre pixel of every k x k block. Point-wise
  corruptions (noise, brightness, contrast, saturate) are thus distributed exactly as at the native size;
  spatial ones (blurs, elastic, fog, frost, snow, spatter, JPEG) act on the enlarged canvas. Pixelate
  runs at the native size instead (it shrinks by a fraction of the size, so it works at any size, and on
  the enlarged canvas it would undo nothing but the enlargement).
- Deterministic: the package draws from numpy's global random state, so each image is corrupted with the
  global state seeded from ``SeedSequence([seed, crc32(corruption), severity, image index])``; the caller's
  global state is restored afterwards. An image's corruption depends on nothing else (not on chunking, the
  subset of corruptions, or the other images). Not thread-safe while generating.
- Output is ``np.uint8`` of the package's result, as its own ``corrupt()`` does (truncation, not rounding).
  Where the package computes NaN (spatter at severities 1-3 divides by the largest droplet, which is 0
  when a small image draws none) the input pixel is kept: that image gets no droplets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import logging
import math
import sys
import types
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evalsuite.core.errors import DataError, EvalsuiteError, UsageError
from evalsuite.data.base import DATASETS, DatasetOptions, ImageSet, load_dataset
from evalsuite.data.torchvision_sets import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    data_root,
)

log = logging.getLogger(__name__)

# The paper's order; the 15 are the benchmark (mCE), the 4 extra were held out for validation.
BENCHMARK_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
EXTRA_CORRUPTIONS: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS: tuple[str, ...] = BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
CORRUPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "common": BENCHMARK_CORRUPTIONS,
    "extra": EXTRA_CORRUPTIONS,
    "all": ALL_CORRUPTIONS,
    "noise": BENCHMARK_CORRUPTIONS[0:3],
    "blur": BENCHMARK_CORRUPTIONS[3:7],
    "weather": BENCHMARK_CORRUPTIONS[7:11],
    "digital": BENCHMARK_CORRUPTIONS[11:15],
}
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

META_FILE = "evalsuite-corruptions.json"
MIN_SIDE = 32  # imagecorruptions refuses smaller images
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class CorruptionSet:
    """One corrupted set: ``data`` holds the images of ``corruption`` at ``severity`` (1..5).

    ``name`` is a spec that loads exactly this set again (``cifar10c:ROOT#fog:3``).
    """

    name: str
    corruption: str
    severity: int
    data: ImageSet


@dataclass(frozen=True)
class OfficialCorruptions:
    """Where one official corrupted set comes from and what it is."""

    kind: str
    folder: str
    url: str
    md5: str
    size: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


# md5 and sizes as Zenodo lists them (records 2535967 and 3555552).
CIFAR10C = OfficialCorruptions(
    "cifar10c",
    "CIFAR-10-C",
    "https://zenodo.org/records/2535967/files/CIFAR-10-C.tar?download=1",
    "56bf5dcef84df0e2308c6dcbcbbd8499",
    2_918_471_680,
    10,
    CIFAR10_MEAN,
    CIFAR10_STD,
)
CIFAR100C = OfficialCorruptions(
    "cifar100c",
    "CIFAR-100-C",
    "https://zenodo.org/records/3555552/files/CIFAR-100-C.tar?download=1",
    "11f0ed0f1191edbf9fa23466ae6021d3",
    2_918_473_216,
    100,
    CIFAR100_MEAN,
    CIFAR100_STD,
)
OFFICIAL: dict[str, OfficialCorruptions] = {f.kind: f for f in (CIFAR10C, CIFAR100C)}


# ------------------------------------------------------------------------------------------------ selection


def resolve_corruptions(names: str | Sequence[str] | None) -> tuple[str, ...]:
    """Corruption names and groups (a comma-separated string or a list) -> corruptions in the paper's order.

    None means ``common``, the 15 benchmark corruptions.
    """
    if names is None:
        return BENCHMARK_CORRUPTIONS
    items = names.split(",") if isinstance(names, str) else list(names)
    chosen: set[str] = set()
    for raw in items:
        name = raw.strip()
        if name in CORRUPTION_GROUPS:
            chosen.update(CORRUPTION_GROUPS[name])
        elif name in ALL_CORRUPTIONS:
            chosen.add(name)
        else:
            import difflib

            known = [*CORRUPTION_GROUPS, *ALL_CORRUPTIONS]
            close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(
                f"unknown corruption {name!r}{hint} (groups: {', '.join(CORRUPTION_GROUPS)}; "
                f"corruptions: {', '.join(ALL_CORRUPTIONS)})"
            )
    if not chosen:
        raise UsageError("no corruption selected")
    return tuple(c for c in ALL_CORRUPTIONS if c in chosen)


def resolve_severities(severities: str | Sequence[int] | None) -> tuple[int, ...]:
    """Severities (``"1,3,5"`` or ``[1, 3, 5]``) -> sorted unique tuple; None means all five."""
    if severities is None:
        return SEVERITIES
    items: list[Any] = severities.split(",") if isinstance(severities, str) else list(severities)
    out: set[int] = set()
    for raw in items:
        try:
            if isinstance(raw, bool):
                raise ValueError
            value = int(raw.strip()) if isinstance(raw, str) else int(raw)
            if isinstance(raw, float) and raw != value:
                raise ValueError
        except ValueError:
            raise UsageError(f"severity must be an integer 1..5, got {raw!r}") from None
        if value not in SEVERITIES:
            raise UsageError(f"severity must be an integer 1..5, got {value}")
        out.add(value)
    if not out:
        raise UsageError("no severity selected")
    return tuple(sorted(out))


def split_selector(arg: str) -> tuple[str, str | None, str | None]:
    """``'ROOT#fog,snow:1,2'`` -> ``('ROOT', 'fog,snow', '1,2')``; no ``#`` -> ``(arg, None, None)``.

    An argument naming an existing path is taken whole, so a path that contains ``#`` still works.
    """
    if "#" not in arg or Path(arg).expanduser().exists():
        return arg, None, None
    base, _, selector = arg.rpartition("#")
    names, colon, sevs = selector.partition(":")
    return base, names or None, (sevs if colon else None)


def _selection(
    spec: str,
    selector: tuple[str | None, str | None],
    corruptions: str | Sequence[str] | None,
    severities: str | Sequence[int] | None,
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    in_names, in_sevs = selector
    if in_names is not None and corruptions is not None:
        raise UsageError(f"{spec}: the spec already selects corruptions; do not pass them again")
    if in_sevs is not None and severities is not None:
        raise UsageError(f"{spec}: the spec already selects severities; do not pass them again")
    return (
        resolve_corruptions(in_names if in_names is not None else corruptions),
        resolve_severities(in_sevs if in_sevs is not None else severities),
    )


def _set_name(base_spec: str, corruption: str, severity: int) -> str:
    return f"{base_spec}#{corruption}:{severity}"


# ------------------------------------------------------------------------------------- reading the layout


@dataclass(frozen=True)
class _FolderInfo:
    num_classes: int
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    classes: tuple[str, ...] | None


def _read_meta(folder: Path) -> dict[str, Any] | None:
    path = folder / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{path} is unreadable ({type(err).__name__}: {err})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path} is not a JSON object")
    return meta


def _info(folder: Path, official: OfficialCorruptions) -> _FolderInfo:
    """A folder written by ``write_corruption_folder`` describes its own set; else the official one."""
    meta = _read_meta(folder)
    if meta is None:
        return _FolderInfo(official.num_classes, official.mean, official.std, None)
    try:
        mean, std, classes = meta.get("mean"), meta.get("std"), meta.get("classes")
        return _FolderInfo(
            int(meta["num_classes"]),
            tuple(float(v) for v in mean) if mean is not None else None,
            tuple(float(v) for v in std) if std is not None else None,
            tuple(str(c) for c in classes) if classes is not None else None,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{folder / META_FILE} lacks or garbles {err}") from None


def _open_npy(path: Path) -> np.ndarray:
    # copy-on-write: torch wants writable arrays; writes (none are made) would never reach the file
    try:
        arr = np.load(path, mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        detail = str(err).replace("\n", " ")
        raise DataError(f"{path} is not a readable .npy ({type(err).__name__}: {detail})") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path} is not a single .npy array")
    return arr


def _labels(folder: Path, num_classes: int) -> tuple[np.ndarray, int]:
    path = folder / "labels.npy"
    labels = _open_npy(path)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: labels must be integer [5n], got {labels.dtype} {labels.shape}")
    if labels.shape[0] == 0 or labels.shape[0] % len(SEVERITIES):
        raise DataError(f"{path}: {labels.shape[0]} labels is not 5 severities x n images")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise DataError(f"{path}: labels span {lo}..{hi}, outside 0..{num_classes - 1}")
    return np.asarray(labels, dtype=np.int64), labels.shape[0] // len(SEVERITIES)


def read_corruption_folder(
    folder: str | Path,
    corruptions: str | Sequence[str] | None = None,
    severities: str | Sequence[int] | None = None,
    *,
    official: OfficialCorruptions = CIFAR10C,
    spec: str | None = None,
) -> list[CorruptionSet]:
    """The sets in a folder of the CIFAR-10-C layout, memory-mapped, one per (corruption, severity).

    Images are uint8 ``[n, C, H, W]`` views of the files (C = 3, or 1 for grey sets this module wrote);
    ``official`` gives the class count and statistics unless the folder's own metadata file does.
    """
    folder = Path(folder).expanduser()
    names, sevs = resolve_corruptions(corruptions), resolve_severities(severities)
    info = _info(folder, official)
    labels, n = _labels(folder, info.num_classes)
    missing = [c for c in names if not (folder / f"{c}.npy").is_file()]
    if missing:
        raise DataError(
            f"{folder} lacks {', '.join(f'{c}.npy' for c in missing)} "
            f"(has {len(list(folder.glob('*.npy'))) - 1} corruption files)"
        )
    base = spec if spec is not None else f"{official.kind}:{folder}"
    out: list[CorruptionSet] = []
    for c in names:
        path = folder / f"{c}.npy"
        arr = _open_npy(path)
        if (
            arr.dtype != np.uint8
            or arr.ndim != 4
            or arr.shape[0] != labels.shape[0]
            or arr.shape[3] not in (1, 3)
        ):
            raise DataError(
                f"{path}: expected uint8 [{labels.shape[0]}, H, W, 1 or 3] to match labels.npy, "
                f"got {arr.dtype} {arr.shape}"
            )
        for s in sevs:
            rows = slice((s - 1) * n, s * n)
            # [n, H, W, C] on disk; a permuted view keeps it memory-mapped
            x = torch.from_numpy(arr[rows]).permute(0, 3, 1, 2)
            y = torch.from_numpy(labels[rows].copy())
            name = _set_name(base, c, s)
            data = ImageSet(name, "test", x, y, info.num_classes, info.mean, info.std, classes=info.classes)
            out.append(CorruptionSet(name, c, s, data))
    log.info("opened %d corrupted sets of %d images from %s", len(out), n, folder)
    return out


def _download(official: OfficialCorruptions, base: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    log.info("downloading %s (%.1f GB) to %s", official.folder, official.size / 1e9, base)
    try:
        download_and_extract_archive(
            official.url,
            download_root=str(base),
            filename=f"{official.folder}.tar",
            md5=official.md5,
            remove_finished=True,
        )
    except Exception as err:  # network, disk and checksum failures alike
        detail = f"{type(err).__name__}: {err}".replace("\n", " ")
        raise DataError(
            f"{official.kind} could not be downloaded to {base} ({detail}); check the network, or place "
            f"{official.folder}/ there yourself"
        ) from err


def official_folder(official: OfficialCorruptions, arg: str, opts: DatasetOptions) -> Path:
    """The folder holding ``labels.npy``: ROOT or ROOT/CIFAR-10-C (downloading there if asked and absent)."""
    base = Path(arg).expanduser() if arg else data_root(opts)
    candidates = (base, base / official.folder)
    for folder in candidates:
        if (folder / "labels.npy").is_file():
            return folder
    if opts.download:
        _download(official, base)
        for folder in candidates:
            if (folder / "labels.npy").is_file():
                return folder
        raise DataError(f"{official.kind}: the download to {base} holds no {official.folder}/labels.npy")
    raise DataError(
        f"{official.kind} not found: no labels.npy in {base} or {base / official.folder}; "
        f"pass --download to fetch it ({official.size / 1e9:.1f} GB), or point at the folder"
    )


# ------------------------------------------------------------------------------------------- generating


def _compat_gaussian(fn: Callable[..., Any]) -> Callable[..., Any]:
    # imagecorruptions 1.1 passes multichannel=True, which scikit-image 0.19 renamed to channel_axis=-1
    def gaussian(*args: Any, multichannel: bool | None = None, **kwargs: Any) -> Any:
        if multichannel:
            kwargs["channel_axis"] = -1
        return fn(*args, **kwargs)

    return gaussian


class _NumpyCompat(types.ModuleType):
    """numpy for imagecorruptions: ``np.float_`` (gone in numpy 2) is float64, all else is numpy."""

    def __getattr__(self, attr: str) -> Any:
        if attr == "float_":
            return np.float64
        return getattr(np, attr)


class _SkimageCompat(types.ModuleType):
    """scikit-image for imagecorruptions: ``util.random_noise`` (impulse noise) draws from an rng seeded
    from numpy's global state, as every other corruption does, instead of fresh OS entropy."""

    def __init__(self, sk: Any) -> None:
        super().__init__("skimage")
        self._sk = sk
        util = types.SimpleNamespace(
            **{k: getattr(sk.util, k) for k in dir(sk.util) if not k.startswith("__")}
        )
        params = inspect.signature(sk.util.random_noise).parameters
        key = "rng" if "rng" in params else "seed"
        original = sk.util.random_noise

        def random_noise(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault(key, int(np.random.randint(0, 2**31 - 1)))
            return original(*args, **kwargs)

        util.random_noise = random_noise
        self.util = util

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._sk, attr)


@lru_cache(maxsize=1)
def corruption_functions() -> dict[str, Callable[..., Any]]:
    """The 19 imagecorruptions functions ``f(PIL image, severity)`` by name, patched to run on current
    numpy, scipy, scikit-image and setuptools (the package's last release, 1.1.2, predates them)."""
    added_stub = False
    try:
        importlib.import_module("pkg_resources")
    except ImportError:
        # only frost's image paths come from pkg_resources; stand in for it during the import
        stub = types.ModuleType("pkg_resources")

        def resource_filename(package: str, name: str) -> str:
            return str(Path(importlib.import_module(package).__file__ or "").parent / name)

        stub.resource_filename = resource_filename  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = stub
        added_stub = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module("imagecorruptions.corruptions")
    except ImportError as err:
        raise EvalsuiteError(
            f"corrupt: needs the optional package imagecorruptions ({err}); "
            "install it with: pip install 'evalsuite[corruptions]'"
        ) from None
    finally:
        if added_stub:
            sys.modules.pop("pkg_resources", None)
    import skimage

    module.gaussian = _compat_gaussian(module.gaussian)  # type: ignore[attr-defined]
    module.np = _NumpyCompat("numpy")  # type: ignore[attr-defined]
    module.sk = _SkimageCompat(skimage)  # type: ignore[attr-defined]
    return {name: getattr(module, name) for name in ALL_CORRUPTIONS}


def imagecorruptions_version() -> str:
    """The installed imagecorruptions version, recorded with generated sets."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imagecorruptions")
    except PackageNotFoundError:
        return "unknown"


def image_seed(seed: int, corruption: str, severity: int, index: int) -> int:
    """The global numpy seed used to corrupt image ``index`` (its position in the source set)."""
    seq = np.random.SeedSequence([seed, zlib.crc32(corruption.encode()), severity, index])
    return int(seq.generate_state(1)[0])


def _as_uint8_hwc(x: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] uint8 or float [0, 1] -> uint8 [N, H, W, C]."""
    if x.dtype == torch.uint8:
        arr = x.numpy()
    else:
        arr = np.clip(np.rint(x.float().numpy() * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr.transpose(0, 2, 3, 1))


def corrupt_images(
    x: torch.Tensor,
    corruption: str,
    severity: int,
    *,
    seed: int = 0,
    indices: Sequence[int] | None = None,
) -> torch.Tensor:
    """Corrupt images ``[N, C, H, W]`` (uint8, or float in [0, 1]; C = 1 or 3) -> uint8 ``[N, C, H, W]``.

    ``indices`` are the images' positions in their source set (default ``0..N-1``): they, ``seed``,
    ``corruption`` and ``severity`` alone fix each result. See the module docstring for grey and small images.
    """
    if corruption not in ALL_CORRUPTIONS:
        resolve_corruptions([corruption])  # raises with suggestions
    (severity,) = resolve_severities([severity])
    if x.ndim != 4 or x.shape[1] not in (1, 3) or min(x.shape[2], x.shape[3]) < 1:
        raise UsageError(f"corrupt: images must be [N, 1 or 3, H, W], got {tuple(x.shape)}")
    n, c, h, w = (int(v) for v in x.shape)
    idx = list(range(n)) if indices is None else [int(i) for i in indices]
    if len(idx) != n:
        raise UsageError(f"corrupt: {n} images but {len(idx)} indices")
    fn = corruption_functions()[corruption]
    from PIL import Image

    k = math.ceil(MIN_SIDE / min(h, w)) if min(h, w) < MIN_SIDE else 1
    if corruption == "pixelate" and min(h, w) >= 4:
        k = 1  # an enlarged image is already pixelated k-fold; pixelate scales with any size
    src = _as_uint8_hwc(x)
    out = np.empty((n, h, w, c), dtype=np.uint8)
    state = np.random.get_state()
    try:
        for j in range(n):
            img = src[j]
            if c == 1:
                img = np.repeat(img, 3, axis=2)
            if k > 1:
                img = np.repeat(np.repeat(img, k, axis=0), k, axis=1)
            np.random.seed(image_seed(seed, corruption, severity, idx[j]))
            with np.errstate(invalid="ignore", divide="ignore"):  # the NaN is handled just below
                raw = np.asarray(fn(Image.fromarray(img), severity))
            if raw.dtype.kind == "f" and np.isnan(raw).any():
                # spatter divides by the largest droplet, 0 when a small image draws none: no droplets
                raw = np.where(np.isnan(raw), img, raw)
            res = np.uint8(raw)
            if res.shape[:2] != img.shape[:2] or res.ndim != 3:
                raise DataError(f"corrupt: {corruption} returned shape {res.shape} for {img.shape}")
            if k > 1:
                res = res[k // 2 :: k, k // 2 :: k]
            if c == 1:
                res = np.clip(np.rint(res[..., :3].astype(np.float64) @ _LUMA), 0, 255).astype(np.uint8)[
                    ..., None
                ]
            out[j] = res
    finally:
        np.random.set_state(state)
    return torch.from_numpy(out.transpose(0, 3, 1, 2).copy())


def _chunks(n: int, chunk: int) -> Iterator[slice]:
    for start in range(0, n, chunk):
        yield slice(start, min(start + chunk, n))


def corrupt_set(
    data: ImageSet,
    corruption: str,
    severity: int,
    *,
    seed: int = 0,
    chunk: int = 1024,
    name: str | None = None,
) -> ImageSet:
    """``data`` with every image corrupted (uint8 ``[N, C, H, W]``), labels and statistics kept."""
    if chunk <= 0:
        raise UsageError(f"chunk must be positive, got {chunk}")
    parts = [
        corrupt_images(data.x[s], corruption, severity, seed=seed, indices=range(s.start, s.stop))
        for s in _chunks(len(data), chunk)
    ]
    x = torch.cat(parts) if parts else data.x.new_empty((0, *data.x.shape[1:]), dtype=torch.uint8)
    label = name if name is not None else _set_name(f"corrupt:{data.name}", corruption, severity)
    return dataclasses.replace(data, name=label, x=x)


def source_fingerprint(data: ImageSet) -> str:
    """sha256 over a set's images (as uint8 HWC, what gets corrupted) and labels."""
    h = hashlib.sha256()
    for s in _chunks(len(data), 4096):
        h.update(_as_uint8_hwc(data.x[s]).tobytes())
    h.update(data.y.numpy().astype(np.int64).tobytes())
    return h.hexdigest()


def write_corruption_folder(
    data: ImageSet,
    folder: str | Path,
    corruptions: str | Sequence[str] | None = None,
    *,
    seed: int = 0,
    chunk: int = 1024,
) -> Path:
    """Corrupt ``data`` at all five severities and write it in the CIFAR-10-C layout under ``folder``.

    Writes ``<corruption>.npy`` (uint8 ``[5N, H, W, C]``, severity-major), ``labels.npy`` (``[5N]``) and
    ``evalsuite-corruptions.json`` (source, fingerprint, seed, package version, classes, statistics).
    Resumable: a corruption is written to ``<name>.npy.part`` chunk by chunk and renamed when complete;
    finished files are kept when rerun. A folder made from another set, seed or package version is
    refused rather than mixed. Read it back with ``cifar10c:FOLDER``.
    """
    names = resolve_corruptions(corruptions)
    folder = Path(folder).expanduser()
    if len(data) == 0:
        raise UsageError(f"corrupt: {data.name} holds no images")
    meta = {
        "source": f"corrupt:{data.name}",
        "split": data.split,
        "fingerprint": source_fingerprint(data),
        "seed": int(seed),
        "generator": f"imagecorruptions {imagecorruptions_version()} (ImageNet-C parameters)",
        "images_per_severity": len(data),
        "shape": list(data.input_shape),
        "num_classes": int(data.num_classes),
        "classes": list(data.classes) if data.classes is not None else None,
        "mean": list(data.mean) if data.mean is not None else None,
        "std": list(data.std) if data.std is not None else None,
    }
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"corrupt: {folder} is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    old = _read_meta(folder)
    if old is not None and old != meta:
        diff = sorted(k for k in meta.keys() | old.keys() if meta.get(k) != old.get(k))
        raise UsageError(
            f"corrupt: {folder} holds corruptions of another set or settings (differs in {', '.join(diff)}); "
            "choose an empty folder"
        )
    if old is None and any(folder.glob("*.npy")):
        raise UsageError(
            f"corrupt: {folder} already holds .npy files of unknown origin; choose an empty folder"
        )
    (folder / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")

    n, (c, h, w) = len(data), data.input_shape
    labels = np.tile(data.y.numpy().astype(np.int64), len(SEVERITIES))
    np.save(folder / "labels.npy", labels)
    for name in names:
        final = folder / f"{name}.npy"
        if final.is_file():
            log.info("%s exists, kept", final)
            continue
        part = folder / f"{name}.npy.part"
        out = np.lib.format.open_memmap(part, mode="w+", dtype=np.uint8, shape=(len(SEVERITIES) * n, h, w, c))
        for s in SEVERITIES:
            for rows in _chunks(n, chunk):
                x = corrupt_images(data.x[rows], name, s, seed=seed, indices=range(rows.start, rows.stop))
                out[(s - 1) * n + rows.start : (s - 1) * n + rows.stop] = x.numpy().transpose(0, 2, 3, 1)
            log.info("%s severity %d: %d images", name, s, n)
        out.flush()
        del out
        part.replace(final)
    return folder


# -------------------------------------------------------------------------------------------------- specs


def load_corruption_sets(
    spec: str,
    corruptions: str | Sequence[str] | None = None,
    severities: str | Sequence[int] | None = None,
    *,
    split: str = "test",
    root: str | Path | None = None,
    download: bool = False,
    shape: tuple[int, int, int] | None = None,
    seed: int = 0,
) -> list[CorruptionSet]:
    """One ``CorruptionSet`` per selected (corruption, severity), corruptions in the paper's order.

    ``spec``: ``cifar10c[:ROOT]``, ``cifar100c[:ROOT]`` or ``corrupt:SPEC``, optionally with a ``#`` selector;
    ``corruptions``/``severities`` select when the spec does not (default: the 15 benchmark corruptions at
    severities 1..5). ``split``, ``shape`` and ``seed`` apply to ``corrupt:`` (the official sets are test
    sets, generated from the CIFAR test split); ``root`` and ``download`` to both.
    """
    kind, _, arg = spec.partition(":")
    if kind in OFFICIAL:
        official = OFFICIAL[kind]
        if split != "test":
            raise UsageError(f"{kind} has only a test split, got {split!r}")
        base, names, sevs = split_selector(arg)
        chosen = _selection(spec, (names, sevs), corruptions, severities)
        opts = DatasetOptions(root=Path(root).expanduser() if root is not None else None, download=download)
        folder = official_folder(official, base, opts)
        return read_corruption_folder(
            folder, *chosen, official=official, spec=f"{kind}:{base}" if base else kind
        )
    if kind == "corrupt":
        base, names, sevs = split_selector(arg)
        if not base:
            raise UsageError("'corrupt' needs a dataset spec: 'corrupt:SPEC', e.g. corrupt:digits")
        if base.partition(":")[0] in (*OFFICIAL, "corrupt"):
            raise UsageError(f"corrupt: {base!r} is already corrupted")
        chosen_c, chosen_s = _selection(spec, (names, sevs), corruptions, severities)
        source = load_dataset(base, split, root=root, download=download, shape=shape)
        out = []
        for c in chosen_c:
            for s in chosen_s:
                name = _set_name(f"corrupt:{base}", c, s)
                out.append(CorruptionSet(name, c, s, corrupt_set(source, c, s, seed=seed, name=name)))
            log.info("corrupted %d images of %s with %s", len(source), base, c)
        return out
    raise UsageError(
        f"not a corruption spec: {spec!r} (expected cifar10c:ROOT, cifar100c:ROOT or corrupt:SPEC)"
    )


def _concatenated(sets: list[CorruptionSet], spec: str, split: str) -> ImageSet:
    if len(sets) == 1:
        return sets[0].data
    first = sets[0].data
    x = torch.cat([s.data.x for s in sets])
    y = torch.cat([s.data.y for s in sets])
    subset: dict[str, object] = {"corruptions": sorted({s.corruption for s in sets})}
    subset["severities"] = sorted({s.severity for s in sets})
    return ImageSet(spec, split, x, y, first.num_classes, first.mean, first.std, first.classes, subset)


def _needs_selector(kind: str, arg: str) -> None:
    if split_selector(arg)[1] is None:
        raise UsageError(
            f"'{kind}' holds 19 corruptions x 5 severities; select some, e.g. '{kind}:{arg or 'ROOT'}#fog:3' "
            "or '#noise' (the corruption checks of the battery take the whole set)"
        )


def _official_loader(official: OfficialCorruptions) -> Callable[[str, str, DatasetOptions], ImageSet]:
    def load(arg: str, split: str, opts: DatasetOptions) -> ImageSet:
        _needs_selector(official.kind, arg)
        spec = f"{official.kind}:{arg}" if arg else official.kind
        sets = load_corruption_sets(spec, split=split, root=opts.root, download=opts.download)
        return _concatenated(sets, spec, split)

    return load


for _official in OFFICIAL.values():
    DATASETS.add(
        _official.kind,
        _official_loader(_official),
        f"{_official.kind}:ROOT#CORRUPTIONS[:SEVERITIES], Hendrycks & Dietterich's {_official.folder} "
        "(--download fetches it)",
    )


@DATASETS.register(
    "corrupt",
    help="corrupt:SPEC#CORRUPTIONS[:SEVERITIES], ImageNet-C corruptions of any set (imagecorruptions)",
)
def load_corrupt(arg: str, split: str, opts: DatasetOptions) -> ImageSet:
    """The selected corruptions of another spec's images, generated in memory (seed 0)."""
    _needs_selector("corrupt", arg)
    spec = f"corrupt:{arg}"
    sets = load_corruption_sets(spec, split=split, root=opts.root, download=opts.download, shape=opts.shape)
    return _concatenated(sets, spec, split)
