"""``EvalOptions``: how to load and run an evaluation, and the checks made on them before any work.

Options are frozen: ``with_overrides`` returns a new one, so a caller's options are never changed by a run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from evalsuite.battery import cache
from evalsuite.core.errors import UsageError
from evalsuite.core.io import check_output
from evalsuite.data import ImageSet, is_registered_name, require_standard_stats, standard_stats
from evalsuite.data.base import spec_path, split_named_spec
from evalsuite.data.ood_groups import parse_ood_groups
from evalsuite.models.foreign import NORM_CHOICES, NORM_GIVEN

ModelSource = str | os.PathLike[str] | nn.Module


@dataclass(frozen=True)
class EvalOptions:
    """How to load and run (not what is measured): model loading flags, data location, device, output.

    Normalization of a model that does not carry its own (at most one of): ``mean``/``std``;
    ``normalize=False`` (it takes [0, 1] images); ``norm_stats`` (a dataset name whose standard statistics
    apply). With none of them a file model gets the standard statistics of a named ``data`` set, and an
    in-memory ``nn.Module`` takes [0, 1] images; on ``npz:``/``folder:`` data a file model needs a choice.
    """

    data: str | None = None
    ood: Sequence[str] | None = None
    arch: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    normalize: bool | None = None
    norm_stats: str | None = None
    trust_checkpoint: bool = False
    data_root: str | None = None
    download: bool = False
    device: str = "auto"
    batch_size: int | None = None
    out: Path | None = None
    cache: bool = True
    cache_dir: Path | None = None
    progress: bool = False
    name: str | None = None

    def with_overrides(self, overrides: Mapping[str, Any]) -> EvalOptions:
        """A copy with ``overrides`` applied (``evaluate(model, config, options, data="digits")``)."""
        unknown = [k for k in overrides if k not in _FIELDS]
        if unknown:
            raise UsageError(f"unknown evaluate option {unknown[0]!r}")
        return dataclasses.replace(self, **overrides) if overrides else self


_FIELDS = frozenset(f.name for f in dataclasses.fields(EvalOptions))


def check_options(model: ModelSource, opts: EvalOptions) -> None:
    """Values checked before any work starts."""
    bs = opts.batch_size
    if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int) or bs < 1):
        raise UsageError(f"--batch-size must be a positive integer, got {bs}")
    _one_norm_choice(opts)
    if opts.norm_stats is not None:
        require_standard_stats(opts.norm_stats)
    if isinstance(model, nn.Module):
        return
    path = Path(model)
    kind = _json_kind(path) if path.is_file() else None
    if kind == "result":
        raise UsageError(
            f"{path} is a result file, not a model; to compare results: evalsuite compare {path} OTHER.json"
        )
    if kind == "json":
        raise UsageError(f"{path} is a JSON file, not a model checkpoint")


def _json_kind(path: Path) -> str | None:
    """'result' for an evalsuite result JSON, 'json' for other JSON, None for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096).lstrip()
            f.seek(max(0, path.stat().st_size - 4096))
            tail = f.read()  # results write their schema last
    except OSError:
        return None
    if not head.startswith((b"{", b"[")):
        return None
    return "result" if b'"evalsuite-result"' in head + tail else "json"


def check_out(opts: EvalOptions, model: ModelSource, data_spec: str | None) -> None:
    """Refuse an ``--out`` that is (or whose .npz is) one of this evaluation's inputs, before any work."""
    if opts.out is None:
        return
    specs = [data_spec or "", *(i.spec for i in parse_ood_groups(opts.ood or ()))]
    inputs = [p for p in (spec_path(s) for s in specs) if p is not None]
    if not isinstance(model, nn.Module):
        inputs.append(Path(model))
    arch = cache.arch_source(opts.arch)
    if arch is not None:
        inputs.append(arch)
    check_output(opts.out, inputs)


def load_options(opts: EvalOptions) -> dict[str, Any]:
    """The loading flags that change the numbers, as recorded in the result and the cache key."""
    return {
        "arch": opts.arch,
        "arch_file_sha256": cache.arch_sha256(opts.arch),
        "arch_kwargs": opts.arch_kwargs,
        "mean": list(opts.mean) if opts.mean else None,
        "std": list(opts.std) if opts.std else None,
        "normalize": opts.normalize,
        "norm_stats": opts.norm_stats,
    }


def norm_request(source: ModelSource, opts: EvalOptions, id_set: ImageSet | None) -> dict[str, Any]:
    """The normalization keywords for ``load_any_model``: what the caller chose, else the fallback."""
    given = _one_norm_choice(opts)
    channels = id_set.input_shape[0] if id_set is not None else None
    data = opts.data or (id_set.name if id_set is not None else "the data")
    kw: dict[str, Any] = {"normalize": opts.normalize is not False}
    if given:
        if opts.mean is None or opts.std is None:
            raise UsageError("--mean and --std go together")
        mean, std = tuple(float(v) for v in opts.mean), tuple(float(v) for v in opts.std)
        if len(mean) != len(std) or not mean:
            raise UsageError(f"--mean has {len(mean)} values but --std has {len(std)}")
        if any(not (v > 0) for v in std):
            raise UsageError(f"--std must be positive, got {','.join(f'{v:g}' for v in std)}")
        _check_channels("--mean/--std", len(mean), channels, data)
        kw.update(mean=mean, std=std, norm_source=NORM_GIVEN)
        return kw
    if opts.norm_stats is not None:
        mean, std = require_standard_stats(opts.norm_stats)
        _check_channels(f"--norm-stats {opts.norm_stats}", len(mean), channels, data)
        kw.update(mean=mean, std=std, norm_source=_dataset_source(opts.norm_stats))
        return kw
    if not kw["normalize"] or id_set is None:
        return kw
    name = split_named_spec(opts.data or "")[1] if opts.data else id_set.name
    stats = standard_stats(name) if is_registered_name(name) else None
    if isinstance(source, nn.Module) and opts.normalize is True:
        # normalize=True on an in-memory module asks for the data set's statistics explicitly
        if stats is None:
            raise UsageError(f"normalize=True: {name} has no standard statistics; {NORM_CHOICES}")
        kw.update(mean=stats[0], std=stats[1], norm_source=_dataset_source(name))
    elif stats is not None:
        kw["fallback"] = (stats[0], stats[1], _dataset_source(name))
    return kw


def _one_norm_choice(opts: EvalOptions) -> bool:
    """At most one of --mean/--std, --no-normalize, --norm-stats; True when mean/std were given."""
    given = opts.mean is not None or opts.std is not None
    chosen = [
        flag
        for flag, on in (
            ("--mean/--std", given),
            ("--no-normalize", opts.normalize is False),
            ("--norm-stats", opts.norm_stats is not None),
        )
        if on
    ]
    if len(chosen) > 1:
        raise UsageError(f"choose one way to normalize, got {' and '.join(chosen)}")
    return given


def _dataset_source(name: str) -> str:
    return f"dataset:{name} standard statistics"


def _check_channels(what: str, n: int, channels: int | None, data: str) -> None:
    if channels is not None and n != channels:
        raise UsageError(f"{what} has {n} channel(s) but the images of {data} have {channels}")
