"""EvalResult and ModelEntry: the typed records of one model's battery run. JSON is the master copy; no
torch here, so reports can be rebuilt from JSON on a machine without it.

Core knows nothing about what a metric *is*: metric names, directions, groups and kinds live in the
catalogue (``evalsuite.metrics.catalogue``, listed by ``evalsuite ls metrics``). A result carries the facts
it was written with in ``metric_info`` (the battery fills it from the catalogue), so a reader of the JSON
alone still knows each metric's direction.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evalsuite.core.errors import DataError
from evalsuite.core.io import atomic_write_bytes, atomic_write_text, json_safe, read_json

SCHEMA = "evalsuite-result"
SCHEMA_VERSION = 1


def eps_name(eps: float) -> str:
    """8/255 -> '8_255' where eps is a whole number of 255ths, else the decimal ('0.5')."""
    k = eps * 255
    if abs(k - round(k)) < 1e-9:
        return f"{round(k)}_255"
    return f"{eps:g}"


@dataclass
class EvalResult:
    """One model, one battery run. ``metrics`` maps names to numbers; everything else is context."""

    metrics: dict[str, float]
    metric_info: dict[str, dict[str, Any]]
    config: dict[str, Any]
    conventions: dict[str, Any]
    data: dict[str, Any]
    model: dict[str, Any]
    provenance: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    sanity: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    arrays_file: str | None = None
    # sha256 of the .npz written with this JSON; optional so files from before it still load
    arrays_sha256: str | None = None
    schema: str = SCHEMA
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        """The result as indented strict JSON (NaN/inf as null), newline-terminated."""
        return json.dumps(json_safe(asdict(self)), indent=1, sort_keys=False, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "result") -> EvalResult:
        """Build a result from a dict, checking schema and version; DataError naming ``where`` if invalid."""
        if d.get("schema") != SCHEMA:
            raise DataError(f"{where}: not an evalsuite result (schema {d.get('schema')!r})")
        if d.get("schema_version") != SCHEMA_VERSION:
            raise DataError(
                f"{where}: result schema version {d.get('schema_version')}, "
                f"this evalsuite reads {SCHEMA_VERSION}"
            )
        names = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in d.items() if k in names})
        except TypeError:
            missing = sorted(
                k
                for k, f in cls.__dataclass_fields__.items()
                if k not in d and f.default is MISSING and f.default_factory is MISSING
            )
            raise DataError(f"{where}: incomplete evalsuite result (missing {', '.join(missing)})") from None

    @classmethod
    def load(cls, path: str | Path) -> EvalResult:
        """Read a result from a JSON file; DataError if it is not an evalsuite result."""
        p = Path(path)
        d = read_json(p)
        if not isinstance(d, dict):
            raise DataError(f"{p}: not an evalsuite result")
        return cls.from_dict(d, str(p))

    def higher_is_better(self, name: str) -> bool:
        """The direction recorded for ``name`` when the result was written; DataError if none was."""
        hib = (self.metric_info.get(name) or {}).get("higher_is_better")
        if hib is None:
            raise DataError(f"result records no direction for metric {name!r} (metric_info lacks it)")
        return bool(hib)


@dataclass
class ModelEntry:
    """One model to compare: a name, where it came from, and its result and arrays (or the error that
    stopped it). The battery makes these; ``evalsuite.report`` compares them."""

    name: str
    source: str
    result: EvalResult | None = None
    arrays: dict[str, np.ndarray] | None = None
    error: str | None = None
    group: str | None = None

    @property
    def ok(self) -> bool:
        """Whether both the result and its arrays loaded."""
        return self.result is not None and self.arrays is not None


def format_normalization(record: dict[str, Any] | None) -> str:
    """A result's ``model.normalization`` record in words: 'dataset:cifar10 standard statistics (mean
    0.4914,0.4822,0.4465; std 0.247,0.2435,0.2616)'."""
    if not record:
        return "not recorded"
    source = str(record.get("source") or "unknown")
    mean, std = record.get("mean"), record.get("std")
    if mean is None or std is None:
        return source

    def nums(values: list[float]) -> str:
        return ",".join(f"{float(v):.4g}" for v in values)

    return f"{source} (mean {nums(mean)}; std {nums(std)})"


Arrays = dict[str, "np.ndarray"]


def save_result(result: EvalResult, arrays: Arrays, out: str | Path) -> Path:
    """Write ``out`` with suffix ``.npz`` (per-example arrays), then ``out`` (JSON), each atomically.

    The JSON records the NPZ's sha256 and is written last: it is the commit point, so a run killed in
    between leaves a JSON whose checksum does not match the NPZ beside it, which every reader refuses.
    """
    out = Path(out)
    npz = out.with_suffix(".npz")
    buf = io.BytesIO()
    # numpy's stub types **kwds as colliding with its allow_pickle: bool keyword; every value here is an array
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    data = buf.getvalue()
    result.arrays_file = npz.name
    result.arrays_sha256 = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(npz, data)
    atomic_write_text(out, result.to_json())
    return out


def load_arrays(result_path: str | Path, result: EvalResult | None = None) -> Arrays:
    """The per-example arrays saved beside a result JSON, checked against the JSON's recorded sha256."""
    result_path = Path(result_path)
    res = result if result is not None else EvalResult.load(result_path)
    npz = result_path.with_name(res.arrays_file or result_path.with_suffix(".npz").name)
    if not npz.exists():
        raise DataError(f"{result_path}: per-example arrays {npz.name} are missing")
    try:
        data = npz.read_bytes()
    except OSError as e:
        raise DataError(f"{npz}: unreadable per-example arrays ({e.strerror})") from None
    if res.arrays_sha256 is not None and hashlib.sha256(data).hexdigest() != res.arrays_sha256:
        raise DataError(
            f"{npz.name} does not match {result_path} (checksum differs: written by another run, or edited)"
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{npz}: unreadable per-example arrays ({e})") from None
