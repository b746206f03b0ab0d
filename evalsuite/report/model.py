"""The typed comparison: frozen records built once by ``report.compare`` and read by every emitter.

``Comparison`` holds one ``MetricRow`` per metric (each model's ``Value`` and each compared model's ``Delta``
with its ``Verdict``), one ``Headline`` per compared model (non-inferiority against the reference) and the
``Settings`` that produced them. JSON schema ``evalsuite-comparison`` version 2 is written by
:func:`to_json_dict`; :func:`from_json_dict` reads version 2 and version 1 files (verdicts of version 1 are
recomputed from its numbers, never from its verdict text).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import Any

from evalsuite.core.errors import DataError

SCHEMA = "evalsuite-comparison"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


class Verdict(str, Enum):
    """The compared model's side of a paired difference (direction already accounted for)."""

    BETTER = "better"
    WORSE = "worse"
    SAME = "no significant difference"
    NOT_TESTED = "not tested"


class Replaces(str, Enum):
    """Non-inferiority answer: can the model replace the reference within the margin?"""

    YES = "replaces it"
    WORSE = "worse"
    INCONCLUSIVE = "inconclusive at this N"
    NOT_TESTED = "not tested"


class Family(str, Enum):
    """Which multiplicity family a metric's test belongs to (descriptive: never tested)."""

    PRIMARY = "primary"
    SECONDARY = "secondary"
    DESCRIPTIVE = "descriptive"


@dataclass(frozen=True)
class Value:
    """One model's value of a metric and its interval."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str | None = None
    n: int | None = None
    n_ood: int | None = None
    debiased: float | None = None  # ECE family: the debiased estimate beside the plug-in value
    std: float | None = None  # seed groups: sample sd over seeds


@dataclass(frozen=True)
class Delta:
    """A compared model minus the reference on one metric: estimate, CI, p-values, verdict, and why."""

    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_adjusted: float | None
    test: str
    verdict: Verdict
    note: str = ""  # which test ran and why, or why none did
    n_perm: int | None = None
    discordant: tuple[int, int] | None = None
    paired_seeds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SeedStat:
    """Mean and standard deviation (None where undefined) of a metric over ``n`` seeds."""

    mean: float | None
    std: float | None
    n: int


@dataclass(frozen=True)
class MetricRow:
    """One metric across models: per-model values, deltas against the reference and how it is tested."""

    name: str
    group: str
    higher_is_better: bool
    family: Family
    correction: str  # "holm", "bh" or "none" (descriptive rows: "none")
    display: str
    values: Mapping[str, Value]
    deltas: Mapping[str, Delta]
    seed_level: Mapping[str, SeedStat] = field(default_factory=dict)
    ood_set: str | None = None
    ood_score: str | None = None
    primary_score: bool = False


@dataclass(frozen=True)
class MetricVerdict:
    """Non-inferiority of one primary metric: the gain (delta, signed so positive is better) against
    ``-margin``; ``lower`` is the one-sided (1 - alpha) lower bound of the gain."""

    metric: str
    margin: float
    delta: float | None
    lower: float | None
    smallest_margin: float | None
    p_value: float | None
    test: str
    verdict: Replaces


@dataclass(frozen=True)
class Headline:
    """The headline answer for one model: does it replace the reference, from its primary metrics."""

    model: str
    verdict: Replaces
    metrics: tuple[MetricVerdict, ...]
    basis: str  # what the tests ran on (examples, or seeds)


@dataclass(frozen=True)
class ModelInfo:
    """One evaluated model: where it came from, whether it succeeded, and its sparsity facts."""

    name: str
    source: str | None
    status: str
    error: str | None = None
    group: str | None = None
    sha256: str | None = None
    arch: str | None = None
    sparsity: Mapping[str, Any] = field(default_factory=dict)
    layer_density: tuple[Mapping[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()
    provenance: Mapping[str, Any] | None = None
    train_metrics: Mapping[str, Any] | None = None
    members: tuple[ModelInfo, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the model's evaluation succeeded."""
        return self.status == "ok"


@dataclass(frozen=True)
class Settings:
    """The statistics used by a comparison: CI level, alpha, corrections, resamples and margins."""

    alpha: float = 0.05
    ci_level: float = 0.95
    n_boot: int = 1000
    seed: int = 0
    correction: str = "holm"  # of the primary family; the secondary family is corrected with BH
    secondary_correction: str = "bh"
    primary: tuple[str, ...] = ()  # the primary family actually used
    primary_override: bool = False
    margins: Mapping[str, float] = field(default_factory=dict)
    n_perm: int = 2000
    max_perm: int = 64_000
    tests: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """A full comparison of models against a reference: models, metric rows, headlines and settings."""

    reference: str
    models: tuple[ModelInfo, ...]
    metrics: tuple[MetricRow, ...]
    headlines: tuple[Headline, ...]
    settings: Settings
    data: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    conventions: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    plots: Mapping[str, Any] = field(default_factory=dict)
    seed_groups: Mapping[str, tuple[str, ...]] | None = None
    example_level: Comparison | None = None

    def ok_models(self) -> list[str]:
        """Models whose evaluation succeeded, reference first."""
        names = [m.name for m in self.models if m.ok]
        return ([self.reference] if self.reference in names else []) + [
            n for n in names if n != self.reference
        ]

    def others(self) -> list[str]:
        """Successful models other than the reference, in order."""
        return [n for n in self.ok_models() if n != self.reference]

    def failed(self) -> list[ModelInfo]:
        """Models whose evaluation failed."""
        return [m for m in self.models if not m.ok]

    def row(self, name: str) -> MetricRow:
        """The metric row named ``name``; raises KeyError if there is none."""
        for r in self.metrics:
            if r.name == name:
                return r
        raise KeyError(name)

    def headline(self, model: str) -> Headline | None:
        """The headline of ``model``, or None when it has none."""
        return next((h for h in self.headlines if h.model == model), None)

    @property
    def is_seed_comparison(self) -> bool:
        """True when values are seed-level (seed groups or any row with seed statistics)."""
        return bool(self.seed_groups) or any(r.seed_level for r in self.metrics)


# ------------------------------------------------------------------------------------------ JSON


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool) or not isinstance(x, numbers.Real):
        return None
    return float(x) if math.isfinite(x) else None


def _plain(x: Any) -> Any:
    if isinstance(x, Enum):
        return x.value
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def to_json_dict(comp: Comparison) -> dict[str, Any]:
    """Schema version 2: plain JSON types, enums as their values, non-finite floats as null."""
    d = {f.name: getattr(comp, f.name) for f in fields(comp)}
    d["example_level"] = to_json_dict(comp.example_level) if comp.example_level is not None else None
    d["models"] = [asdict(m) for m in comp.models]
    d["metrics"] = [asdict(r) for r in comp.metrics]
    d["headlines"] = [asdict(h) for h in comp.headlines]
    d["settings"] = asdict(comp.settings)
    out = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION}
    out.update(_plain(d))
    return out


def _pick(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


def _value(d: Mapping[str, Any]) -> Value:
    v = _pick(Value, d)
    for k in ("value", "ci_low", "ci_high", "debiased", "std"):
        v[k] = _num(v.get(k))
    return Value(**v)


def _model(d: Mapping[str, Any]) -> ModelInfo:
    m = _pick(ModelInfo, d)
    m["status"] = str(d.get("status") or "ok")
    m["source"] = d.get("source")
    m["sparsity"] = dict(d.get("sparsity") or {})
    m["layer_density"] = tuple(d.get("layer_density") or ())
    m["warnings"] = tuple(str(w) for w in d.get("warnings") or ())
    m["members"] = tuple(_model(x) for x in d.get("members") or ())
    return ModelInfo(**m)


def _check(d: Any, where: str) -> int:
    if not isinstance(d, dict) or d.get("schema") != SCHEMA:
        schema = d.get("schema") if isinstance(d, dict) else type(d).__name__
        raise DataError(f"{where}: not an evalsuite comparison (schema {schema!r})")
    version = d.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise DataError(
            f"{where}: comparison schema version {version!r}, this evalsuite reads "
            + " and ".join(str(v) for v in READABLE_VERSIONS)
        )
    if not isinstance(d.get("models"), list) or not isinstance(d.get("metrics"), list):
        raise DataError(f"{where}: comparison lacks its 'models' or 'metrics' list")
    return int(version)


def from_json_dict(d: Any, where: str = "comparison") -> Comparison:
    """Read a schema version 2 or version 1 comparison (DataError for anything else)."""
    version = _check(d, where)
    try:
        return _from_v2(d) if version == 2 else _from_v1(d)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{where}: malformed comparison ({type(e).__name__}: {e})") from None


def _from_v2(d: Mapping[str, Any]) -> Comparison:
    rows = []
    for r in d["metrics"]:
        deltas = {}
        for m, x in (r.get("deltas") or {}).items():
            dx = _pick(Delta, x)
            dx["verdict"] = Verdict(x["verdict"])
            for k in ("delta", "ci_low", "ci_high", "p_value", "p_adjusted"):
                dx[k] = _num(dx.get(k))
            if dx.get("discordant") is not None:
                dx["discordant"] = tuple(dx["discordant"])
            if dx.get("paired_seeds") is not None:
                dx["paired_seeds"] = tuple(dx["paired_seeds"])
            deltas[m] = Delta(**dx)
        rows.append(
            MetricRow(
                **{
                    **_pick(MetricRow, r),
                    "family": Family(r["family"]),
                    "values": {m: _value(v) for m, v in (r.get("values") or {}).items()},
                    "deltas": deltas,
                    "seed_level": {m: SeedStat(**s) for m, s in (r.get("seed_level") or {}).items()},
                }
            )
        )
    heads = tuple(
        Headline(
            model=h["model"],
            verdict=Replaces(h["verdict"]),
            basis=h.get("basis", ""),
            metrics=tuple(
                MetricVerdict(**{**_pick(MetricVerdict, x), "verdict": Replaces(x["verdict"])})
                for x in h.get("metrics") or ()
            ),
        )
        for h in d.get("headlines") or ()
    )
    s = _pick(Settings, d.get("settings") or {})
    s["primary"] = tuple(s.get("primary") or ())
    sg = d.get("seed_groups")
    return Comparison(
        reference=d["reference"],
        models=tuple(_model(m) for m in d["models"]),
        metrics=tuple(rows),
        headlines=heads,
        settings=Settings(**s),
        data=d.get("data") or {},
        config=d.get("config") or {},
        conventions=d.get("conventions") or {},
        provenance=d.get("provenance") or {},
        plots=d.get("plots") or {},
        seed_groups={g: tuple(v) for g, v in sg.items()} if sg else None,
        example_level=_from_v2(d["example_level"]) if d.get("example_level") else None,
    )


def _verdict_from_numbers(delta: float | None, p: float | None, hib: bool, alpha: float) -> Verdict:
    if delta is None or p is None:
        return Verdict.NOT_TESTED
    if not p < alpha or delta == 0.0:
        return Verdict.SAME
    return Verdict.BETTER if (delta > 0.0) == hib else Verdict.WORSE


def _from_v1(d: Mapping[str, Any]) -> Comparison:
    """Version 1 (one Holm family over every metric): verdicts recomputed from the numbers."""
    from evalsuite.metrics import catalogue as K

    st = d.get("settings") or {}
    alpha = _num(st.get("alpha")) or 0.05
    correction = str(st.get("multiple_testing") or "holm")
    rows = []
    for r in d["metrics"]:
        hib = bool(r.get("higher_is_better", True))
        deltas = {}
        for m, x in (r.get("deltas") or {}).items():
            delta, p = _num(x.get("delta")), _num(x.get("p_value"))
            p_adj = _num(x.get("p_holm", x.get("p_value")))
            verdict = _verdict_from_numbers(delta, p_adj, hib, alpha)
            note = ""
            if x.get("zero_variance"):
                verdict, note = Verdict.NOT_TESTED, "zero variance across seeds"
            deltas[m] = Delta(
                delta=delta,
                ci_low=_num(x.get("ci_low")),
                ci_high=_num(x.get("ci_high")),
                p_value=p,
                p_adjusted=p_adj,
                test=str(x.get("test") or ""),
                verdict=verdict,
                note=note,
                discordant=tuple(x["discordant"]) if x.get("discordant") else None,
                paired_seeds=tuple(x["paired_seeds"]) if x.get("paired_seeds") else None,
            )
        ref = K.find(r["name"])
        tested = bool(deltas) and any(x.p_value is not None for x in deltas.values())
        params = dict(ref.params) if ref is not None else {}
        rows.append(
            MetricRow(
                name=r["name"],
                group=str(r.get("group") or (ref.group if ref else "other")),
                higher_is_better=hib,
                family=Family.PRIMARY if tested else Family.DESCRIPTIVE,
                correction=correction if tested else "none",
                display=ref.display() if ref is not None else r["name"],
                values={m: _value(v) for m, v in (r.get("values") or {}).items()},
                deltas=deltas,
                seed_level={
                    m: SeedStat(_num(s.get("mean")), _num(s.get("std")), int(s.get("n") or 0))
                    for m, s in (r.get("seed_level") or {}).items()
                },
                ood_set=params.get("set"),
                ood_score=params.get("score"),
                primary_score=params.get("score") == K.PRIMARY_OOD_SCORE,
            )
        )
    sg = d.get("seed_groups")
    settings = Settings(
        alpha=alpha,
        ci_level=_num(st.get("ci_level")) or 0.95,
        n_boot=int(st.get("n_boot") or 1000),
        seed=int(st.get("seed") or 0),
        correction=correction,
        secondary_correction=correction,
        primary=tuple(r.name for r in rows if r.family is Family.PRIMARY),
        tests={str(k): str(v) for k, v in (st.get("tests") or {}).items()},
    )
    return Comparison(
        reference=d["reference"],
        models=tuple(_model(m) for m in d["models"]),
        metrics=tuple(rows),
        headlines=(),
        settings=settings,
        data=d.get("data") or {},
        config=d.get("config") or {},
        conventions=d.get("conventions") or {},
        provenance=d.get("provenance") or {},
        plots=d.get("plots") or {},
        seed_groups={g: tuple((v or {}).get("members") or ()) for g, v in sg.items()} if sg else None,
        example_level=_from_v1(d["example_level"]) if d.get("example_level") else None,
    )


def as_comparison(comp: Comparison | Mapping[str, Any]) -> Comparison:
    """A Comparison from itself or from its JSON form (either schema version)."""
    return comp if isinstance(comp, Comparison) else from_json_dict(comp)


__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "Comparison",
    "Delta",
    "Family",
    "Headline",
    "MetricRow",
    "MetricVerdict",
    "ModelInfo",
    "Replaces",
    "SeedStat",
    "Settings",
    "Value",
    "Verdict",
    "as_comparison",
    "from_json_dict",
    "replace",
    "to_json_dict",
]
