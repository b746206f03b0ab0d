"""``evalsuite data export``: an offline ``.npz`` copy of any dataset spec, in the format ``npz:`` reads.

Built once from the torchvision datasets (SVHN, CIFAR-100, CIFAR-10) after they are downloaded, so later
runs need no network and no torchvision files: ``--ood far:npz:svhn-test.npz``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from evalsuite.core.io import atomic_write, check_output
from evalsuite.data.base import DatasetOptions, ImageSet, load_dataset, spec_path, split_named_spec
from evalsuite.data.torchvision_sets import data_root

log = logging.getLogger(__name__)

# what each torchvision set reads under the data root: an output must never land on (or in) these
_TORCHVISION_INPUTS = {
    "cifar10": lambda split: "cifar-10-batches-py",
    "cifar100": lambda split: "cifar-100-python",
    "svhn": lambda split: f"{split}_32x32.mat",
}


def export_inputs(spec: str, split: str, root: str | os.PathLike[str] | None = None) -> list[Path]:
    """The files or folders loading ``spec`` reads (for the overwrite check); [] for in-memory sets."""
    spec = split_named_spec(spec)[1]
    path = spec_path(spec)
    if path is not None:
        return [path]
    kind = spec.partition(":")[0]
    if kind in _TORCHVISION_INPUTS:
        base = data_root(DatasetOptions(root=Path(root).expanduser() if root is not None else None))
        return [base / _TORCHVISION_INPUTS[kind](split)]
    return []


def image_set_arrays(data: ImageSet) -> dict[str, np.ndarray]:
    """The ``npz:`` arrays of a set: ``x`` uint8 ``[N, H, W, C]`` (float sets: float32 ``[N, C, H, W]`` in
    [0, 1]), ``y`` int64 ``[N]``, and ``classes`` (unicode ``[K]``) when the set names its classes."""
    x = data.x.cpu().numpy()
    # npz: reads uint8 channels-last (as saved from PIL/numpy) and float channels-first
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.dtype == np.uint8 else x.astype(np.float32)
    arrays = {"x": x, "y": data.y.cpu().numpy().astype(np.int64)}
    if data.classes is not None:
        arrays["classes"] = np.asarray([str(c) for c in data.classes], dtype=np.str_)
    return arrays


def export_npz(
    spec: str,
    split: str,
    out: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> Path:
    """Write ``spec``'s ``split`` to ``out`` (.npz) atomically; ``load_dataset('npz:OUT')`` gives it back.

    ``out`` is checked before anything is loaded: it must end in ``.npz`` and must not be, or lie inside,
    a file or folder the spec reads (UsageError). Uncompressed (``np.savez``): CIFAR's random-looking
    pixels barely compress and the file loads faster. Returns the written path.
    """
    inputs = export_inputs(spec, split, root)
    target = check_output(out, inputs, suffix=".npz", partner_suffix=None, flag="--out")
    data = load_dataset(
        split_named_spec(spec)[1], split, root=Path(root) if root is not None else None, download=download
    )
    arrays = image_set_arrays(data)
    atomic_write(target, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]
    log.info("exported %s %s: %d images to %s", spec, split, len(data), target)
    return target
