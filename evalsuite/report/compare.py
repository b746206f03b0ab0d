"""Build the typed :class:`~evalsuite.report.model.Comparison`: every model against the reference on the
same examples, once, in one place. Works from EvalResults and their per-example arrays alone (no torch).

What each metric gets is asked of the catalogue (``evalsuite.metrics.catalogue``), never read off its name:
- value intervals (``value_ci``): Wilson for accuracies; the basic bootstrap (which removes the plug-in's
  bias instead of doubling it) for NLL and Brier; the bias-aware bound for the ECE family, with the debiased
  ECE beside the plug-in one; a two-sample percentile bootstrap (ID and OOD resampled apart) for OOD metrics;
- paired deltas (``paired_test``), each with a CI that excludes 0 exactly when its p < alpha: exact McNemar
  with its matching interval for accuracies; DeLong for AUROC; an adaptive paired permutation test for
  everything else (NLL, Brier, ECE, adaptive ECE, AUPR, FPR95); none for MCE (descriptive);
- multiplicity: the primary family (catalogue ``primary_metrics`` or ``--primary``) Holm-corrected (or
  ``--correction``), every other tested metric Benjamini-Hochberg, per compared model;
- the headline: a one-sided non-inferiority test per primary metric against a margin (catalogue defaults or
  ``--margin``), "replaces it" overall only when every primary metric is (an intersection-union test, so
  no correction is needed);
- seed groups: a paired t-test over seeds when both groups have exactly the same seed set, else Welch's
  t-test on all seeds; the delta's note says which ran and why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from evalsuite.core.errors import EvalsuiteError, UsageError
from evalsuite.core.results import EvalResult, ModelEntry
from evalsuite.metrics import catalogue as K
from evalsuite.metrics import corruption as CR
from evalsuite.metrics import inference as I
from evalsuite.metrics import stats as S
from evalsuite.report.model import (
    Comparison,
    Delta,
    Family,
    Headline,
    MetricRow,
    MetricVerdict,
    ModelInfo,
    Replaces,
    SeedStat,
    Settings,
    Value,
    Verdict,
)
from evalsuite.report.plotdata import PlotSettings, plot_data

_CONFIG_IGNORED = {"shard", "extra"}  # "extra": results written before it was dropped
CORRECTIONS = ("holm", "bh", "none")


@dataclass(frozen=True)
class CompareSettings:
    """How a comparison is made. ``primary``: metric names, family keys or aliases (``auroc``) replacing
    the catalogue's primary family; ``margins``: non-inferiority margins by family key or metric name over
    the catalogue defaults; ``correction``: of the primary family (``holm``, ``bh`` or ``none``; ``none``
    also leaves the secondary family uncorrected)."""

    alpha: float = 0.05
    n_boot: int = 1000
    seed: int = 0
    ci_level: float = 0.95
    correction: str = "holm"
    primary: tuple[str, ...] | None = None
    margins: Mapping[str, float] = field(default_factory=dict)
    n_perm: int = 2000
    max_perm: int = 64_000
    max_curve_points: int = 200
    max_hist_points: int = 2000

    def __post_init__(self) -> None:
        if self.correction not in CORRECTIONS:
            raise UsageError(f"correction must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
        if not 0.0 < self.alpha < 1.0:
            raise UsageError(f"alpha must be in (0, 1), got {self.alpha}")
        for k, m in self.margins.items():
            if not (math.isfinite(m) and m >= 0.0):
                raise UsageError(f"margin {k}={m} must be a finite number >= 0")

    @property
    def plot(self) -> PlotSettings:
        """The plot-data settings (CI level, seed, point limits) that these comparison settings imply."""
        return PlotSettings(self.ci_level, self.seed, self.max_curve_points, self.max_hist_points)


def check_comparable(entries: Sequence[ModelEntry]) -> None:
    """Refuse models evaluated on different data, examples, class counts or battery settings."""
    ok = [e for e in entries if e.ok]
    if not ok:
        return
    ref = ok[0]
    assert ref.result is not None and ref.arrays is not None
    for e in ok[1:]:
        assert e.result is not None and e.arrays is not None
        r0, r1 = ref.result, e.result
        d0, d1 = r0.data["id"], r1.data["id"]
        if d0["spec"] != d1["spec"] or d0["n"] != d1["n"]:
            raise UsageError(
                f"models were evaluated on different data: {ref.name} on {d0['spec']} ({d0['n']} examples), "
                f"{e.name} on {d1['spec']} ({d1['n']} examples)"
            )
        k0, k1 = ref.arrays["id/logits"].shape[1], e.arrays["id/logits"].shape[1]
        if k0 != k1:
            raise UsageError(f"models have different class counts: {ref.name} {k0}, {e.name} {k1}")
        f0, f1 = d0.get("fingerprint") or {}, d1.get("fingerprint") or {}
        if f0.get("sha256") != f1.get("sha256") or not np.array_equal(
            ref.arrays["id/labels"], e.arrays["id/labels"]
        ):
            raise UsageError(
                f"models were evaluated on different data: {ref.name} and {e.name} both name {d0['spec']}, "
                "but the files (or their labels) differ"
            )
        if not np.array_equal(ref.arrays["id/index"], e.arrays["id/index"]):
            raise UsageError(
                f"{ref.name} and {e.name} were evaluated on different examples (--limit/--seed/--shard)"
            )
        # JSON round trip: a result read from disk has lists where a fresh one has tuples
        c0 = json.loads(json.dumps({k: v for k, v in r0.config.items() if k not in _CONFIG_IGNORED}))
        c1 = json.loads(json.dumps({k: v for k, v in r1.config.items() if k not in _CONFIG_IGNORED}))
        diff = sorted(k for k in set(c0) | set(c1) if c0.get(k) != c1.get(k))
        if diff:
            what = ", ".join(f"{k}: {c0.get(k)} vs {c1.get(k)}" for k in diff[:4])
            raise UsageError(f"battery settings differ between {ref.name} and {e.name} ({what})")
        o0 = [(o["name"], o["spec"]) for o in r0.data.get("ood", [])]
        o1 = [(o["name"], o["spec"]) for o in r1.data.get("ood", [])]
        if o0 != o1:
            raise UsageError(f"OOD sets differ between {ref.name} ({o0}) and {e.name} ({o1})")


def result_warnings(result: EvalResult) -> list[str]:
    """The human sentences a battery run left in ``sanity["warnings"]`` (e.g. near-chance accuracy)."""
    warns = (result.sanity or {}).get("warnings") or []
    if isinstance(warns, str):
        warns = [warns]
    return [" ".join(str(w).split()) for w in warns if str(w).strip()]


# ------------------------------------------------------------------------------------------ helpers


def _f(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _ordered_metrics(entries: Sequence[ModelEntry]) -> list[str]:
    names: list[str] = []
    for e in entries:
        if e.ok:
            assert e.result is not None
            names.extend(n for n in e.result.metrics if n not in names)
    return sorted(names, key=lambda n: (K.group_rank(n), names.index(n)))


def _arrays(e: ModelEntry, ref: K.MetricRef | None) -> list[np.ndarray] | None:
    if ref is None or not ref.family.arrays or e.arrays is None:
        return None
    keys = ref.array_keys()
    return [e.arrays[k] for k in keys] if all(k in e.arrays for k in keys) else None


def _split(ref: K.MetricRef, arr: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(ID arrays, OOD arrays) of a two-sample metric: the catalogue lists ID arrays first, one per side."""
    half = len(arr) // 2
    return arr[:half], arr[half:]


def _n_bins(e: ModelEntry) -> int:
    return int(e.result.config.get("n_bins", 15)) if e.result is not None else 15


def _clip(lo: float, hi: float, bounds: tuple[float | None, float | None]) -> tuple[float, float]:
    b_lo, b_hi = bounds
    if b_lo is not None:
        lo, hi = max(lo, b_lo), max(hi, b_lo)
    if b_hi is not None:
        lo, hi = min(lo, b_hi), min(hi, b_hi)
    return lo, hi


# ------------------------------------------------------------------------------------- value intervals


def metric_value(
    name: str, value: float | None, arr: list[np.ndarray] | None, n_bins: int, s: CompareSettings
) -> Value:
    """One model's value of ``name`` with the interval the catalogue names for it."""
    ref = K.find(name)
    if ref is None or arr is None:
        return Value(_f(value))
    how = ref.family.value_ci
    fn = ref.stat_fn(n_bins)
    n = len(arr[0])
    if how == "wilson":
        lo, hi = S.wilson_ci(int(np.sum(arr[0])), n, s.ci_level)
        return Value(_f(value), _f(lo), _f(hi), "wilson", n)
    if how == "bootstrap" and fn is not None:
        r = I.value_ci(fn, arr, "basic", s.n_boot, s.ci_level, s.seed, bounds=ref.family.bounds)
        return Value(_f(value), _f(r["ci_low"]), _f(r["ci_high"]), f"basic bootstrap({s.n_boot})", n)
    if how == "calibration_bound":
        kind, scheme = K.calibration_bound_args(name)
        r = I.calibration_error_ci(arr[0], arr[1], kind, n_bins, scheme, s.ci_level, s.n_boot, s.seed)
        return Value(
            _f(value),
            _f(r["ci_low"]),
            _f(r["ci_high"]),
            f"calibration bound({s.n_boot})",
            n,
            debiased=_f(r["debiased"]),
        )
    if how == "bootstrap2" and fn is not None:
        ids, oods = _split(ref, arr)
        lo, hi = S.bootstrap_ci_two_sample(fn, ids, oods, n_boot=s.n_boot, level=s.ci_level, seed=s.seed)
        lo, hi = _clip(lo, hi, ref.family.bounds)
        return Value(_f(value), _f(lo), _f(hi), f"bootstrap2({s.n_boot})", n, n_ood=len(oods[0]))
    return Value(_f(value), n=n)


def value_table(entry: ModelEntry, settings: CompareSettings | None = None) -> dict[str, dict[str, Any]]:
    """One model's metrics with their CIs (as in a comparison), keyed by metric name (plain dicts)."""
    s = settings or CompareSettings()
    if not entry.ok:
        raise UsageError(f"{entry.name}: no result ({entry.error})")
    assert entry.result is not None
    out = {}
    for name in _ordered_metrics([entry]):
        v = metric_value(name, entry.result.metrics[name], _arrays(entry, K.find(name)), _n_bins(entry), s)
        out[name] = {
            "value": v.value,
            "ci_low": v.ci_low,
            "ci_high": v.ci_high,
            "ci_method": v.ci_method,
            "n": v.n,
            "higher_is_better": K.higher_is_better(name),
        }
    return out


# ------------------------------------------------------------------------------------- paired deltas


def _thresholds(family: Family, m: int, s: CompareSettings) -> list[float]:
    """Every level a p of this family is compared with after correction, so the adaptive permutation count
    resolves p against each (Holm: alpha / j; BH: alpha k / m)."""
    how = _correction_of(family, s)
    if how == "holm":
        return sorted({s.alpha / j for j in range(1, m + 1)})
    if how == "bh":
        return sorted({s.alpha * k / m for k in range(1, m + 1)})
    return [s.alpha]


def _correction_of(family: Family, s: CompareSettings) -> str:
    if family is Family.DESCRIPTIVE or s.correction == "none":
        return "none"
    return s.correction if family is Family.PRIMARY else "bh"


def paired_delta(
    name: str,
    ref_arr: list[np.ndarray],
    arr: list[np.ndarray],
    n_bins: int,
    s: CompareSettings,
    thresholds: Sequence[float] = (),
) -> dict[str, Any]:
    """The delta (model - reference) of ``name``, its CI at level 1 - alpha and its raw p, by the
    catalogue's paired test; the CI excludes 0 exactly when p < alpha. No p for descriptive metrics."""
    ref = K.lookup(name)
    test = ref.family.paired_test
    fn = ref.stat_fn(n_bins)
    if test == "mcnemar":
        r = I.accuracy_delta_test(ref_arr[0], arr[0], s.alpha)
        return {**r, "test": "exact McNemar", "discordant": (r["b01"], r["b10"])}
    if test == "delong":
        r = S.delong_test(ref_arr[0], ref_arr[1], arr[0], arr[1], level=1.0 - s.alpha)
        # delta +- z se is a normal approximation; a difference of two AUROCs lies in [-1, 1]
        lo, hi = _clip(r["ci_low"], r["ci_high"], (-1.0, 1.0))
        return {**r, "ci_low": lo, "ci_high": hi, "test": "DeLong"}
    if test == "permutation" and fn is not None:
        r = I.permutation_test(
            fn, ref_arr, arr, s.alpha, thresholds, n_perm=s.n_perm, max_perm=s.max_perm, seed=s.seed
        )
        return {**r, "test": "paired permutation"}
    if test == "permutation2" and fn is not None:
        (ia, oa), (ib, ob) = _split(ref, ref_arr), _split(ref, arr)
        r = I.permutation_test_two_sample(
            fn,
            ia,
            oa,
            ib,
            ob,
            alpha=s.alpha,
            thresholds=thresholds,
            n_perm=s.n_perm,
            max_perm=s.max_perm,
            seed=s.seed,
        )
        return {**r, "test": "paired permutation (ID and OOD swapped apart)"}
    fa, fb = (float(fn(*ref_arr)), float(fn(*arr))) if fn is not None else (math.nan, math.nan)
    return {"delta": fb - fa, "ci_low": None, "ci_high": None, "p_value": None, "test": "none (descriptive)"}


def _verdict(delta: float | None, p_adj: float | None, hib: bool, alpha: float) -> Verdict:
    if delta is None or p_adj is None:
        return Verdict.NOT_TESTED
    if not p_adj < alpha or delta == 0.0:
        return Verdict.SAME
    return Verdict.BETTER if (delta > 0.0) == hib else Verdict.WORSE


def _adjust(ps: list[float], how: str) -> list[float]:
    if how == "holm":
        return S.holm(ps)
    if how == "bh":
        return I.benjamini_hochberg(ps)
    return list(ps)


def _finalize(
    raw: dict[str, dict[str, dict[str, Any]]], families: Mapping[str, Family], s: CompareSettings
) -> dict[str, dict[str, Delta]]:
    """Correct the raw p-values per compared model and family; give every delta its verdict."""
    for model in {m for per in raw.values() for m in per}:
        for fam in (Family.PRIMARY, Family.SECONDARY):
            names = [n for n, per in raw.items() if model in per and families[n] is fam]
            names = [n for n in names if raw[n][model].get("p_value") is not None]
            adj = _adjust([raw[n][model]["p_value"] for n in names], _correction_of(fam, s))
            for n, p in zip(names, adj):
                raw[n][model]["p_adjusted"] = p
    out: dict[str, dict[str, Delta]] = {}
    for name, per in raw.items():
        hib = K.higher_is_better(name)
        out[name] = {}
        for model, d in per.items():
            delta, p_adj = _f(d.get("delta")), _f(d.get("p_adjusted"))
            verdict = d.get("verdict") or _verdict(delta, p_adj, hib, s.alpha)
            disc = d.get("discordant")
            seeds = d.get("paired_seeds")
            out[name][model] = Delta(
                delta=delta,
                ci_low=_f(d.get("ci_low")),
                ci_high=_f(d.get("ci_high")),
                p_value=_f(d.get("p_value")),
                p_adjusted=p_adj,
                test=str(d.get("test") or ""),
                verdict=verdict,
                note=str(d.get("note") or ""),
                n_perm=d.get("n_perm"),
                discordant=(int(disc[0]), int(disc[1])) if disc is not None else None,
                paired_seeds=tuple(seeds) if seeds is not None else None,
            )
    return out


# ------------------------------------------------------------------------------------------ families


def primary_family(names: Iterable[str], override: Sequence[str] | None) -> set[str]:
    """The primary metrics among ``names``: the catalogue's rule, or ``override`` (metric names, family
    keys or aliases; UsageError for a word that names nothing here)."""
    names = list(names)
    if override is None:
        return K.primary_metrics(names)
    out: set[str] = set()
    for word in override:
        key = K.resolve_family_key(word)
        hits = [
            n for n in names if n == word or (key is not None and (r := K.find(n)) and r.family.key == key)
        ]
        if not hits:
            raise UsageError(f"--primary {word!r} matches no metric of this comparison")
        out.update(hits)
    return out


def metric_families(names: Iterable[str], override: Sequence[str] | None) -> dict[str, Family]:
    """Map each metric name to its family: primary, secondary, or descriptive when untested."""
    names = list(names)
    primary = primary_family(names, override)
    out = {}
    for n in names:
        ref = K.find(n)
        if ref is None or not ref.family.tested:
            out[n] = Family.DESCRIPTIVE
        else:
            out[n] = Family.PRIMARY if n in primary else Family.SECONDARY
    return out


def _row(
    name: str,
    family: Family,
    s: CompareSettings,
    values: dict[str, Value],
    deltas: dict[str, Delta],
    seed_level: dict[str, SeedStat] | None = None,
) -> MetricRow:
    ref = K.find(name)
    params = dict(ref.params) if ref is not None else {}
    return MetricRow(
        name=name,
        group=K.group_of(name),
        higher_is_better=K.higher_is_better(name),
        family=family,
        correction=_correction_of(family, s),
        display=ref.display() if ref is not None else name,
        values=values,
        deltas=deltas,
        seed_level=seed_level or {},
        ood_set=params.get("set"),
        ood_score=params.get("score"),
        primary_score=params.get("score") == K.PRIMARY_OOD_SCORE,
    )


def _settings(s: CompareSettings, primary: Iterable[str], tests: Mapping[str, str]) -> Settings:
    return Settings(
        alpha=s.alpha,
        ci_level=s.ci_level,
        n_boot=s.n_boot,
        seed=s.seed,
        correction=s.correction,
        secondary_correction="none" if s.correction == "none" else "bh",
        primary=tuple(sorted(primary, key=K.sort_key)),
        primary_override=s.primary is not None,
        margins={n: m for n in primary if (m := K.noninferiority_margin(n, s.margins)) is not None},
        n_perm=s.n_perm,
        max_perm=s.max_perm,
        tests=dict(tests),
    )


# ------------------------------------------------------------------------------------ non-inferiority


def _overall(verdicts: Sequence[Replaces]) -> Replaces:
    tested = [v for v in verdicts if v is not Replaces.NOT_TESTED]
    if not tested:
        return Replaces.NOT_TESTED
    if Replaces.WORSE in tested:
        return Replaces.WORSE
    if all(v is Replaces.YES for v in tested):
        return Replaces.YES
    return Replaces.INCONCLUSIVE


_NI = {"replaces it": Replaces.YES, "worse": Replaces.WORSE, "inconclusive": Replaces.INCONCLUSIVE}


def _ni_normal(gain: float, se: float, margin: float, alpha: float, df: float | None) -> dict[str, Any]:
    """One-sided test of gain <= -margin from a normal (df None) or t estimate with standard error se."""
    dist = sps.norm if df is None else sps.t(df)
    if not se > 0.0:
        return {"verdict": "not tested"}
    z = (gain + margin) / se
    p_ni, p_worse = float(dist.sf(z)), float(dist.cdf(z))
    lower = gain - float(dist.isf(alpha)) * se
    verdict = "replaces it" if p_ni < alpha else "worse" if p_worse < alpha else "inconclusive"
    return {"verdict": verdict, "p_value": p_ni, "lower": lower, "smallest_margin": -lower}


def _metric_verdict(
    name: str, margin: float, gain: float | None, r: Mapping[str, Any], test: str
) -> MetricVerdict:
    v = _NI.get(str(r.get("verdict")), Replaces.NOT_TESTED)
    return MetricVerdict(
        metric=name,
        margin=margin,
        delta=_f(gain) if v is not Replaces.NOT_TESTED or gain is not None else None,
        lower=_f(r.get("lower")),
        smallest_margin=_f(r.get("smallest_margin")),
        p_value=_f(r.get("p_value")),
        test=test,
        verdict=v,
    )


def noninferiority(
    name: str,
    margin: float,
    ref_arr: list[np.ndarray],
    arr: list[np.ndarray],
    n_bins: int,
    s: CompareSettings,
) -> MetricVerdict:
    """Can the model replace the reference on ``name`` within ``margin``? One-sided at alpha, on examples."""
    ref = K.lookup(name)
    hib = ref.higher_is_better
    test = ref.family.paired_test
    fn = ref.stat_fn(n_bins)
    sign = 1.0 if hib else -1.0
    if test == "mcnemar":
        r = I.noninferiority_accuracy(ref_arr[0], arr[0], margin, s.alpha)
        return _metric_verdict(name, margin, sign * r["delta"], r, "Tango score, one-sided")
    if test == "delong":
        d = S.delong_test(ref_arr[0], ref_arr[1], arr[0], arr[1])
        r = _ni_normal(sign * d["delta"], d["se"], margin, s.alpha, None)
        return _metric_verdict(name, margin, sign * d["delta"], r, "DeLong normal, one-sided")
    if test == "permutation" and fn is not None:
        r = I.noninferiority_bootstrap(fn, ref_arr, arr, margin, hib, s.alpha, s.n_boot, s.seed)
        return _metric_verdict(name, margin, r["gain"], r, "basic paired bootstrap, one-sided")
    gain = sign * (float(fn(*arr)) - float(fn(*ref_arr))) if fn is not None else None
    return _metric_verdict(name, margin, gain, {}, "none: no non-inferiority test for this metric")


def _headline(model: str, mvs: list[MetricVerdict], basis: str) -> Headline:
    return Headline(model, _overall([m.verdict for m in mvs]), tuple(mvs), basis)


# ------------------------------------------------------------------------------------ model records


def _model_info(e: ModelEntry) -> ModelInfo:
    if e.result is None:
        return ModelInfo(e.name, e.source, "ok" if e.ok else "failed", e.error, e.group)
    card = e.result.model.get("card") or {}
    sp = card.get("sparsity") or {}
    layers = (e.result.details.get("sparsity") or {}).get("layers") or {}
    return ModelInfo(
        name=e.name,
        source=e.source,
        status="ok" if e.ok else "failed",
        error=e.error,
        group=e.group,
        sha256=e.result.model.get("sha256"),
        arch=card.get("arch"),
        sparsity={
            "scheme": sp.get("scheme"),
            "target_density": sp.get("target_density"),
            "density": e.result.metrics.get("sparsity/density"),
            "mask_hash": sp.get("mask_hash"),
        },
        # The audit lists prunable layers in execution order; "depth" keeps that order explicit so plots
        # can align models whose layer lists differ.
        layer_density=tuple(
            {"layer": k, "density": v.get("density"), "numel": v.get("numel"), "depth": i}
            for i, (k, v) in enumerate(layers.items())
        ),
        warnings=tuple(result_warnings(e.result)),
        provenance=e.result.provenance,
        train_metrics=card.get("metrics"),
    )


def _json_copy(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str)) if x is not None else None


# ------------------------------------------------------------------------------------ example level

TESTS_EXAMPLE_LEVEL = {
    "accuracy": "exact McNemar p with its matching Clopper-Pearson interval on the discordant pairs",
    "auroc": "DeLong",
    "other": "adaptive paired permutation test, CI by inverting it",
    "descriptive": "MCE, AutoAttack's fooled-by fractions and the sparsity audit are reported, never tested",
    "headline": "one-sided non-inferiority per primary metric (Tango for accuracies, DeLong for AUROC, basic "
    "paired bootstrap otherwise); replaces it overall only when every primary metric does",
}


def build_comparison(
    entries: Sequence[ModelEntry], reference: str | None = None, settings: CompareSettings | None = None
) -> Comparison:
    """Compare every ok entry with the reference (default: the first entry) on the same examples."""
    s = settings or CompareSettings()
    if not entries:
        raise UsageError("nothing to compare")
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise UsageError(f"model names must be unique, got {names}; use --names")
    ref_name = reference or names[0]
    if ref_name not in names:
        raise UsageError(f"--reference {ref_name!r} is not one of {names}")
    by_name = {e.name: e for e in entries}
    ref = by_name[ref_name]
    if not ref.ok:
        raise EvalsuiteError(f"the reference {ref_name} failed: {ref.error}")
    ordered = [ref] + [e for e in entries if e.name != ref_name]
    check_comparable(ordered)
    ok = [e for e in ordered if e.ok]
    others = [e for e in ok if e is not ref]
    n_bins = _n_bins(ref)
    metric_names = _ordered_metrics(ok)
    # mCE is relative to the reference, so it exists only in a comparison
    extra = corruption_errors(ok, ref)
    if extra:
        # after the battery's corruption metrics, before the next group
        at = max(i for i, n in enumerate(metric_names) if K.group_of(n) == "corruption") + 1
        metric_names = [*metric_names[:at], *extra, *metric_names[at:]]
    families = metric_families(metric_names, s.primary)
    m_fam = {f: sum(1 for n in metric_names if families[n] is f) for f in Family}
    values: dict[str, dict[str, Value]] = {}
    raw: dict[str, dict[str, dict[str, Any]]] = {}
    heads: dict[str, list[MetricVerdict]] = {e.name: [] for e in others}
    for name in metric_names:
        mref = K.find(name)
        values[name], raw[name] = {}, {}
        if name in extra:
            base = extra[name].get(ref.name)
            for e in ok:
                if e.name in extra[name]:
                    v = extra[name][e.name]
                    values[name][e.name] = Value(_f(v))
                    if e is not ref and base is not None:
                        raw[name][e.name] = {"delta": v - base, "test": "none (descriptive)"}
            continue
        ref_arr = _arrays(ref, mref)
        for e in ok:
            assert e.result is not None
            if name not in e.result.metrics:
                continue
            arr = _arrays(e, mref)
            values[name][e.name] = metric_value(name, e.result.metrics[name], arr, n_bins, s)
            if e is ref or arr is None or ref_arr is None:
                continue
            th = _thresholds(families[name], m_fam[families[name]], s)
            raw[name][e.name] = paired_delta(name, ref_arr, arr, n_bins, s, th)
            margin = K.noninferiority_margin(name, s.margins)
            if families[name] is Family.PRIMARY and margin is not None:
                heads[e.name].append(noninferiority(name, margin, ref_arr, arr, n_bins, s))
    deltas = _finalize(raw, families, s)
    rows = tuple(_row(n, families[n], s, values[n], deltas[n]) for n in metric_names)
    first = ref.result
    assert first is not None
    primary = [n for n in metric_names if families[n] is Family.PRIMARY]
    return Comparison(
        reference=ref_name,
        models=tuple(_model_info(e) for e in ordered),
        metrics=rows,
        headlines=tuple(_headline(e.name, heads[e.name], _basis(first)) for e in others),
        settings=_settings(s, primary, TESTS_EXAMPLE_LEVEL),
        data=_json_copy(first.data),
        config=_json_copy(first.config),
        conventions=_json_copy(first.conventions),
        provenance={
            "inputs": {e.name: _json_copy(e.result.provenance if e.result else None) for e in ordered}
        },
        plots=_json_copy(plot_data(ok, s.plot)),
    )


def _accuracy_grid(result: EvalResult) -> dict[tuple[str, int], float]:
    """``(corruption, severity) -> accuracy`` of a result's per-set corruption accuracies."""
    grid = {}
    for name, v in result.metrics.items():
        ref = K.find(name)
        if ref is not None and ref.family.key == "corruption_accuracy":
            grid[(ref.params["corruption"], int(ref.params["severity"]))] = float(v)
    return grid


def corruption_errors(entries: Sequence[ModelEntry], ref: ModelEntry) -> dict[str, dict[str, float]]:
    """``corruption/mce`` and ``corruption/relative_mce`` of every entry against the reference (which
    scores 1.0), from each result's per-set accuracies; relative mCE also needs the clean accuracies.
    Empty when the reference has no corruption accuracies; an entry whose grid differs is left out."""
    assert ref.result is not None
    ref_grid = _accuracy_grid(ref.result)
    if not ref_grid:
        return {}
    ref_clean = ref.result.metrics.get("accuracy")
    out: dict[str, dict[str, float]] = {"corruption/mce": {}, "corruption/relative_mce": {}}
    for e in entries:
        assert e.result is not None
        grid = _accuracy_grid(e.result)
        clean = e.result.metrics.get("accuracy")
        both = clean is not None and ref_clean is not None
        try:
            m = CR.corruption_metrics(
                {"accuracy": grid},
                ref_acc=ref_grid,
                clean_acc=clean if both else None,
                ref_clean_acc=ref_clean if both else None,
            )
        except ValueError:
            continue
        for name in out:
            if name in m:
                out[name][e.name] = m[name]
    return {k: v for k, v in out.items() if v}


def _basis(result: EvalResult) -> str:
    n = (result.data.get("id") or {}).get("n")
    return f"paired on the same {n} test examples" if n is not None else "paired on the same test examples"


# ------------------------------------------------------------------------------------------ seed level


def _seed_of(e: ModelEntry) -> int | None:
    card = (e.result.model.get("card") or {}) if e.result is not None else {}
    seed = card.get("seed")
    return int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None


def _seed_list(seeds: Sequence[int | None]) -> str:
    return ", ".join("?" if k is None else str(k) for k in seeds)


def seed_pairing(
    ref_name: str, ref_seeds: Sequence[int | None], name: str, seeds: Sequence[int | None]
) -> tuple[bool, str]:
    """(paired?, why): paired by seed only when both groups have exactly the same known, distinct seeds
    (two or more); otherwise Welch's t-test on every seed of both groups, none dropped."""
    a, b = list(ref_seeds), list(seeds)
    ka, kb = [k for k in a if k is not None], [k for k in b if k is not None]
    known = len(ka) == len(a) and len(kb) == len(b)
    distinct = len(set(a)) == len(a) and len(set(b)) == len(b)
    if known and distinct and sorted(ka) == sorted(kb) and len(a) >= 2:
        return (
            True,
            f"paired t-test over seeds {_seed_list(sorted(ka))} (both groups have exactly these seeds)",
        )
    if not known:
        why = "a training seed is unknown"
    elif not distinct:
        why = "a group repeats a seed"
    elif sorted(a) != sorted(b):  # type: ignore[type-var]
        why = f"the seed sets differ ({ref_name}: {_seed_list(a)}; {name}: {_seed_list(b)})"
    else:
        why = "fewer than 2 seeds"
    return False, f"Welch's t-test on all seeds ({len(a)} vs {len(b)}): {why}"


def seed_delta(
    a: Sequence[float], b: Sequence[float], paired: bool, alpha: float, bounds: tuple[float, float]
) -> dict[str, Any]:
    """t-test of mean(b) - mean(a) over seeds and its t interval at 1 - alpha (same se and df, so the CI
    excludes 0 exactly when p < alpha). No p (not tested) with fewer than 2 seeds or zero variance."""
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    delta = float(np.mean(xb) - np.mean(xa))
    out: dict[str, Any] = {"delta": delta, "ci_low": None, "ci_high": None, "p_value": None}
    if len(xa) < 2 or len(xb) < 2:
        out.update(verdict=Verdict.NOT_TESTED, reason=f"fewer than 2 seeds per group ({len(xa)}, {len(xb)})")
        return out
    if paired:
        d = xb - xa
        se, df = float(np.std(d, ddof=1)) / math.sqrt(len(d)), float(len(d) - 1)
    else:
        va, vb = float(np.var(xa, ddof=1)) / len(xa), float(np.var(xb, ddof=1)) / len(xb)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1)) if se > 0 else 1.0
    # Seed-level metrics are multiples of 1/N, so a "constant" difference carries float noise of a few ulps
    tol = 1e-12 * max(1.0, float(np.max(np.abs(np.r_[xa, xb]))))
    if se <= tol:
        if abs(delta) <= tol:
            out.update(delta=0.0, verdict=Verdict.SAME, reason="identical on every seed (zero variance)")
        else:
            side = "higher" if delta > 0 else "lower"
            out.update(verdict=Verdict.NOT_TESTED, reason=f"zero variance across seeds; {side} on every seed")
        return out
    t = delta / se
    q = float(sps.t.ppf(1.0 - alpha / 2.0, df))
    width = bounds[1] - bounds[0] if math.isfinite(bounds[1]) else math.inf
    lo, hi = max(delta - q * se, -width), min(delta + q * se, width)
    out.update(p_value=float(2.0 * sps.t.sf(abs(t), df)), ci_low=lo, ci_high=hi, se=se, df=df)
    return out


def _t_half_width(vals: Sequence[float], level: float) -> float | None:
    if len(vals) < 2:
        return None
    sd = float(np.std(vals, ddof=1))
    return float(sps.t.ppf(0.5 + level / 2, len(vals) - 1) * sd / math.sqrt(len(vals)))


def _bounds(name: str) -> tuple[float, float]:
    ref = K.find(name)
    lo, hi = ref.family.bounds if ref is not None else (None, None)
    return (lo if lo is not None else -math.inf, hi if hi is not None else math.inf)


def _seed_value(name: str, vals: list[float], level: float) -> Value:
    mean = float(np.mean(vals))
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
    half = _t_half_width(vals, level)
    b = _bounds(name)
    # mean +- t sd / sqrt(n) can leave a rate's range with few seeds; clipping keeps it inside and says so
    clip = f", clipped to [{b[0]:g}, {b[1]:g}]" if math.isfinite(b[1]) else ""
    lo, hi = _clip(mean - half, mean + half, b) if half is not None else (None, None)
    return Value(_f(mean), _f(lo), _f(hi), "t over seeds" + clip, len(vals), std=_f(std))


TESTS_SEED_LEVEL = {
    "seed_level": "paired t-test over seeds when both groups have exactly the same seed set, else Welch's "
    "t-test on all seeds (no seed is dropped); the delta's CI is the same test's t interval",
    "headline": "one-sided non-inferiority per primary metric with the same t statistic",
}


def build_group_comparison(
    groups: Mapping[str, Sequence[ModelEntry]],
    reference: str | None = None,
    settings: CompareSettings | None = None,
) -> Comparison:
    """Several seeds per model: mean and sd over seeds per group, tested at the seed level.

    Each compared group's delta is a paired t-test over training seeds (the checkpoint card's ``seed``) when
    both groups have exactly the same set of distinct known seeds, and Welch's t-test on every member of both
    groups otherwise; the delta's ``note`` says which ran and why. Families and corrections as in
    :func:`build_comparison`. Example-level statistics between the first members of each group are in
    ``example_level``.
    """
    s = settings or CompareSettings()
    if not groups:
        raise UsageError("no groups")
    names = list(groups)
    ref_name = reference or names[0]
    if ref_name not in groups:
        raise UsageError(f"--reference {ref_name!r} is not one of the groups {names}")
    all_entries = [e for g in groups.values() for e in g]
    check_comparable(all_entries)
    ok_groups = {g: [e for e in members if e.ok] for g, members in groups.items()}
    if not ok_groups[ref_name]:
        raise EvalsuiteError(f"every model of the reference group {ref_name} failed")
    metric_names = _ordered_metrics(all_entries)
    families = metric_families(metric_names, s.primary)
    values: dict[str, dict[str, Value]] = {}
    seed_level: dict[str, dict[str, SeedStat]] = {}
    raw: dict[str, dict[str, dict[str, Any]]] = {}
    heads: dict[str, list[MetricVerdict]] = {g: [] for g in ok_groups if g != ref_name and ok_groups[g]}
    for name in metric_names:
        by_seed = {
            g: [
                (_seed_of(e), float(e.result.metrics[name]))
                for e in members
                if e.result and name in e.result.metrics
            ]
            for g, members in ok_groups.items()
        }
        values[name], seed_level[name], raw[name] = {}, {}, {}
        for g, pairs in by_seed.items():
            if pairs:
                vals = [v for _, v in pairs]
                values[name][g] = _seed_value(name, vals, s.ci_level)
                seed_level[name][g] = SeedStat(values[name][g].value, values[name][g].std, len(vals))
        ref_pairs = by_seed[ref_name]
        for g, pairs in by_seed.items():
            if g == ref_name or not pairs or not ref_pairs:
                continue
            paired, why = seed_pairing(ref_name, [k for k, _ in ref_pairs], g, [k for k, _ in pairs])
            if paired:
                # paired means every seed is known: the filter only narrows the type
                ref_map = {k: v for k, v in ref_pairs if k is not None}
                g_map = {k: v for k, v in pairs if k is not None}
                seed_order = sorted(ref_map)
                a, b = [ref_map[k] for k in seed_order], [g_map[k] for k in seed_order]
            else:
                a, b = [v for _, v in ref_pairs], [v for _, v in pairs]
            r = seed_delta(a, b, paired, s.alpha, _bounds(name))
            if families[name] is Family.DESCRIPTIVE:
                r.update(
                    p_value=None, ci_low=None, ci_high=None, verdict=Verdict.NOT_TESTED, reason="descriptive"
                )
            r["note"] = r.get("reason") or ""
            r["test"] = why
            if paired:
                r["paired_seeds"] = tuple(sorted(g_map))
            raw[name][g] = r
            margin = K.noninferiority_margin(name, s.margins)
            if families[name] is Family.PRIMARY and margin is not None:
                sign = 1.0 if K.higher_is_better(name) else -1.0
                gain = sign * r["delta"]
                ni = _ni_normal(gain, r.get("se", 0.0), margin, s.alpha, r.get("df")) if "se" in r else {}
                test = ("paired t" if paired else "Welch t") + ", one-sided"
                heads[g].append(_metric_verdict(name, margin, gain, ni, test))
    deltas = _finalize(raw, families, s)
    rows = tuple(_row(n, families[n], s, values[n], deltas[n], seed_level[n]) for n in metric_names)
    order = [ref_name] + [g for g in names if g != ref_name]
    firsts = [ok_groups[g][0] for g in order if ok_groups[g]]
    example_level = build_comparison(firsts, firsts[0].name, s) if len(firsts) > 1 else None
    models = []
    for g in order:
        members = groups[g]
        base = _model_info(members[0]) if members else ModelInfo(g, None, "failed")
        models.append(
            ModelInfo(
                name=g,
                source=base.source,
                status="ok" if ok_groups[g] else "failed",
                error="; ".join(f"{e.name}: {e.error}" for e in members if not e.ok) or None,
                group=g,
                sha256=base.sha256,
                arch=base.arch,
                sparsity=base.sparsity,
                layer_density=base.layer_density,
                warnings=tuple(
                    f"{e.name}: {w}"
                    for e in members
                    if e.result is not None
                    for w in result_warnings(e.result)
                ),
                provenance=base.provenance,
                train_metrics=base.train_metrics,
                members=tuple(_model_info(e) for e in members),
            )
        )
    first = ok_groups[ref_name][0].result
    assert first is not None
    plots = plot_data(firsts, s.plot)
    ok_order = [g for g in order if ok_groups[g]]
    plots = {
        key: {g: plots[key][e.name] for g, e in zip(ok_order, firsts) if e.name in plots[key]}
        for key in plots
    }
    primary = [n for n in metric_names if families[n] is Family.PRIMARY]
    n_seeds = {g: len(v) for g, v in ok_groups.items()}
    basis = "across training seeds (" + ", ".join(f"{g}: {k}" for g, k in n_seeds.items()) + ")"
    return Comparison(
        reference=ref_name,
        models=tuple(models),
        metrics=rows,
        headlines=tuple(_headline(g, heads[g], basis) for g in heads),
        settings=_settings(s, primary, TESTS_SEED_LEVEL),
        data=_json_copy(first.data),
        config=_json_copy(first.config),
        conventions=_json_copy(first.conventions),
        provenance={
            "inputs": {e.name: _json_copy(e.result.provenance if e.result else None) for e in all_entries}
        },
        plots=_json_copy(plots),
        seed_groups={g: tuple(e.name for e in members) for g, members in groups.items()},
        example_level=example_level,
    )
