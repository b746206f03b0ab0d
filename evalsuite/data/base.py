"""The in-memory dataset record every loader returns, the dataset registry and spec parsing."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from evalsuite.core.errors import UsageError
from evalsuite.core.io import sha256_file
from evalsuite.core.registry import Registry


@dataclass(frozen=True)
class ImageSet:
    """Images and labels held in memory.

    ``x`` is uint8 ``[N, C, H, W]`` (0..255) or float32 ``[N, C, H, W]`` in [0, 1]; ``images()`` always
    returns float32 in [0, 1]. Keeping CIFAR as uint8 lets training put the whole set on the GPU.
    ``mean``/``std`` are the published normalization statistics of the dataset family (stored in models
    trained on it), or None for sets that have none (``npz:``, ``folder:``, the OOD sets): evaluation never
    measures statistics on the images it scores.
    """

    name: str
    split: str
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    classes: tuple[str, ...] | None = None
    subset: dict[str, object] | None = None

    def __post_init__(self) -> None:
        if self.x.ndim != 4:
            raise UsageError(f"{self.name}: images must be [N, C, H, W], got shape {tuple(self.x.shape)}")
        if self.y.ndim != 1 or self.y.shape[0] != self.x.shape[0]:
            raise UsageError(
                f"{self.name}: {self.x.shape[0]} images but labels of shape {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The (C, H, W) shape of one image."""
        c, h, w = self.x.shape[1:]
        return int(c), int(h), int(w)

    def images(self, index: torch.Tensor | slice | None = None) -> torch.Tensor:
        """The images at ``index`` (all when None) as float32 in [0, 1], [N, C, H, W]."""
        x = self.x if index is None else self.x[index]
        return to_float_images(x)

    def training_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The statistics a model trained on this set stores: the published ones, else measured here.

        Only for training: a training set's own statistics are the right ones to store in its model.
        """
        if self.mean is not None and self.std is not None:
            return self.mean, self.std
        from evalsuite.data.files import channel_stats

        return channel_stats(self.x)

    def select(self, index: torch.Tensor, **subset_info: object) -> ImageSet:
        """A copy holding only the examples at ``index``, with ``subset_info`` recorded as its subset."""
        return dataclasses.replace(self, x=self.x[index], y=self.y[index], subset=dict(subset_info) or None)


def to_float_images(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 [0, 1]; float input passes through as float32."""
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    return x.float()


@dataclass(frozen=True)
class DatasetOptions:
    """Options every dataset loader receives: data root, whether to download, and a required shape."""

    root: Path | None = None
    download: bool = False
    shape: tuple[int, int, int] | None = None


Loader = Callable[[str, str, DatasetOptions], ImageSet]
"""``loader(argument, split, options)``; argument is the part after ``kind:`` in a spec, or ''."""

DATASETS: Registry[Loader] = Registry("dataset")


def load_dataset(
    spec: str,
    split: str = "test",
    root: str | Path | None = None,
    download: bool = False,
    shape: tuple[int, int, int] | None = None,
) -> ImageSet:
    """Load a dataset spec: a registered name (``cifar10``, ``digits``) or ``kind:argument`` (``npz:PATH``).

    ``shape`` ``(C, H, W)`` is a request to loaders that can produce any size (``folder:``, the OOD sets).
    """
    if split not in ("train", "test"):
        raise UsageError(f"split must be 'train' or 'test', got {split!r}")
    kind, _, arg = spec.partition(":")
    loader = DATASETS.get(kind)
    opts = DatasetOptions(
        root=Path(root).expanduser() if root is not None else None,
        download=download,
        shape=shape,
    )
    if _MEMO is None:
        return loader(arg, split, opts)
    key = (spec, split, str(opts.root), shape, _stamp(spec))
    if key not in _MEMO:
        _MEMO[key] = loader(arg, split, opts)
    return _MEMO[key]


_MEMO: dict[tuple[object, ...], ImageSet] | None = None


@contextlib.contextmanager
def dataset_memo() -> Iterator[None]:
    """Within the block, each dataset is read once (``compare`` evaluates many models on the same data).

    Loaded sets are shared, so code inside the block must not modify their tensors in place (the battery
    only reads and selects). A file changed during the block (size or time stamp) is read again.
    """
    global _MEMO
    outer = _MEMO
    _MEMO = {} if outer is None else outer
    try:
        yield
    finally:
        _MEMO = outer


def _stamp(spec: str) -> tuple[int, int] | None:
    path = spec_path(spec)
    try:
        st = path.stat() if path is not None else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size) if st is not None else None


def stratified_subset(data: ImageSet, n: int, seed: int = 0) -> ImageSet:
    """A seeded, class-stratified subset of ``n`` examples, in shuffled (not class-sorted) order.

    Each class gets floor(n * p_c) examples, the remainder going to the classes with the largest
    fractional parts (ties broken by class index), so class proportions match the full set.
    Never a prefix: netcal reads a class-sorted prefix with <= 2 labels as a binary problem.
    """
    total = len(data)
    if n <= 0:
        raise UsageError(f"--limit must be positive, got {n}")
    if n >= total:
        return data
    index = stratified_indices(data.y, n, seed)
    return data.select(index, limit=n, seed=seed, of=total, method="stratified")


def stratified_indices(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of the subset ``stratified_subset`` takes (int64 [min(n, N)]), in its shuffled order."""
    total = int(labels.shape[0])
    if n >= total:
        return torch.arange(total)
    g = torch.Generator().manual_seed(seed)
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * n / total
    take = exact.floor().long()
    remainder = n - int(take.sum())
    if remainder > 0:
        frac = exact - take.double()
        order = sorted(range(len(classes)), key=lambda i: (-float(frac[i]), i))
        for i in order[:remainder]:
            take[i] += 1
    picked = []
    for c, k in zip(classes.tolist(), take.tolist()):
        idx = torch.nonzero(labels == c, as_tuple=False).flatten()
        perm = torch.randperm(len(idx), generator=g)[:k]
        picked.append(idx[perm])
    index = torch.cat(picked)
    return index[torch.randperm(len(index), generator=g)]


def split_named_spec(spec: str) -> tuple[str | None, str]:
    """``'imagenet=npz:PATH'`` -> ``('imagenet', 'npz:PATH')``; a bare spec -> ``(None, spec)``.

    The part before ``=`` is a name only if it holds no ``:`` or ``/`` (so paths with ``=`` stay paths).
    """
    head, eq, rest = spec.partition("=")
    if eq and head.strip() and ":" not in head and "/" not in head:
        return head.strip(), rest.strip()
    return None, spec


def spec_path(spec: str) -> Path | None:
    """The file or folder a spec reads (``npz:PATH``, ``folder:PATH``, named or not), else None."""
    kind, _, arg = split_named_spec(spec)[1].partition(":")
    return Path(arg).expanduser() if kind in ("npz", "folder") and arg else None


def spec_fingerprint(spec: str, root: str | Path | None = None) -> dict[str, object]:
    """What identifies a dataset spec's contents: the resolved path and a hash of the files it reads.

    ``npz:PATH`` -> sha256 of the file; ``folder:PATH`` -> sha256 over every file's relative path and
    content (so an image edited in place, even keeping its size and time stamp, changes it); registered
    names (``cifar10``, ``digits``) -> the name and data root. Two specs with the same string in different
    folders, or a file edited in place, get different fingerprints.
    """
    import hashlib

    spec = split_named_spec(spec)[1]
    kind = spec.partition(":")[0]
    path = spec_path(spec)
    if kind == "npz" and path is not None:
        p = path.resolve()
        try:
            digest: str | None = sha256_file(p)
        except OSError:
            digest = None
        return {"spec": spec, "path": str(p), "sha256": digest}
    if kind == "folder" and path is not None:
        p = path.resolve()
        h = hashlib.sha256()
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            try:
                content = sha256_file(f)
            except OSError:
                content = "unreadable"
            h.update(f"{f.relative_to(p).as_posix()}\0{content}\n".encode())
        return {"spec": spec, "path": str(p), "sha256": h.hexdigest()}
    return {"spec": spec, "root": str(Path(root).expanduser().resolve()) if root else None}
