"""Build a Comparison: every model against the reference on the same examples, with CIs and paired tests.

Works from EvalResults and their per-example arrays alone (no torch). The output is a plain JSON-ready
dict (schema ``evalsuite-comparison``) that the renderers turn into markdown, HTML, LaTeX and CSV.

Statistics (95 % by default):
- value CIs: Wilson for accuracies (clean and robust); a seeded bootstrap over examples for ECE, adaptive
  ECE, MCE, NLL and Brier, and a two-sample bootstrap (ID and OOD resampled independently) for OOD metrics;
- paired deltas (model - reference) on the same examples: exact McNemar p and a paired-bootstrap CI for
  accuracy-type metrics; DeLong's test and CI for AUROC; a paired bootstrap (p and CI) for the rest;
- Holm's correction across every tested metric of one model; the verdict reads the metric's direction;
- seed groups: mean and std over seeds per group, and a t-test at the seed level (paired by position when
  the groups have equal sizes, Welch otherwise), Holm-corrected the same way.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalsuite import metrics as M
from evalsuite.core.errors import EvalsuiteError, UsageError
from evalsuite.core.results import EvalResult, metric_direction, metric_group
from evalsuite.metrics import stats as S
from evalsuite.metrics.batched import batched_for

SCHEMA = "evalsuite-comparison"
SCHEMA_VERSION = 1
GROUP_ORDER = ("clean", "calibration", "ood", "robust", "sparsity")
_CONFIG_IGNORED = {"shard", "extra"}  # "extra": results written before it was dropped


@dataclass
class ModelEntry:
    """One input: a name, where it came from, and its result and arrays (or the error that stopped it)."""

    name: str
    source: str
    result: EvalResult | None = None
    arrays: dict[str, np.ndarray] | None = None
    error: str | None = None
    group: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.arrays is not None


@dataclass(frozen=True)
class CompareSettings:
    alpha: float = 0.05
    n_boot: int = 1000
    seed: int = 0
    ci_level: float = 0.95
    max_curve_points: int = 200
    max_hist_points: int = 2000


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


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def metric_bounds(name: str) -> tuple[float, float]:
    """The range a metric's value can take, so a CI built from a normal or t approximation can be
    clipped to it: rates (accuracies, calibration errors, OOD rates, densities) lie in [0, 1]."""
    leaf = name.rsplit("/", 1)[-1]
    if name == "brier":
        return 0.0, 2.0
    if name == "nll" or (name.startswith("sparsity/") and "density" not in leaf):
        return 0.0, math.inf
    return 0.0, 1.0


def _clip_ci(lo: float, hi: float, bounds: tuple[float, float]) -> tuple[float, float]:
    return max(lo, bounds[0]), min(hi, bounds[1])


def _ordered_metrics(entries: Sequence[ModelEntry]) -> list[str]:
    names: list[str] = []
    for e in entries:
        if e.ok:
            assert e.result is not None
            names.extend(n for n in e.result.metrics if n not in names)
    return sorted(names, key=lambda n: (GROUP_ORDER.index(metric_group(n)), names.index(n)))


StatFn = Callable[..., float]


def _metric_plan(name: str, n_bins: int) -> tuple[str, StatFn | None, list[str]]:
    """(kind, stat_fn, array keys) for a metric; kind is accuracy | mean | calibration | ood | none."""
    if name == "accuracy":
        return "accuracy", _mean, ["id/correct"]
    if name.startswith("robust/"):
        _, attack, eps, _ = name.split("/")
        return "accuracy", _mean, [f"robust/{attack}/{eps}/correct"]
    if name in ("nll", "brier"):
        return "mean", _mean, [f"id/{name}"]
    if name in ("ece", "ece_adaptive", "mce"):
        fn = functools.partial(
            {"ece": M.ece, "ece_adaptive": M.ece_adaptive, "mce": M.mce}[name], n_bins=n_bins
        )
        return "calibration", fn, ["id/confidence", "id/correct"]
    if name.startswith("ood/"):
        _, ood_set, score, which = name.split("/")
        fn = {
            "auroc": M.auroc,
            "aupr_in": M.aupr_in,
            "aupr_out": M.aupr_out,
            "fpr95": M.fpr95,
            "fpr95_ood": M.fpr95_ood,
        }[which]
        return "ood", fn, [f"id/score/{score}", f"ood/{ood_set}/score/{score}"]
    return "none", None, []


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x))


def _boot_kw(fn: StatFn) -> tuple[StatFn, dict[str, Any]]:
    """The vectorized twin of ``fn`` when there is one (same numbers, one call per block of replicates)."""
    fb = batched_for(fn)
    return (fb, {"batched": True}) if fb is not None else (fn, {})


def _value_ci(name: str, kind: str, fn: StatFn | None, arrays: list[np.ndarray], s: CompareSettings) -> dict:
    if kind == "accuracy":
        x = arrays[0]
        lo, hi = S.wilson_ci(int(np.sum(x)), int(len(x)), s.ci_level)
        return {"ci_low": lo, "ci_high": hi, "ci_method": "wilson", "n": int(len(x))}
    if kind in ("mean", "calibration"):
        assert fn is not None
        f, kw = _boot_kw(fn)
        lo, hi = S.bootstrap_ci(f, arrays, n_boot=s.n_boot, level=s.ci_level, seed=s.seed, **kw)
        return {"ci_low": lo, "ci_high": hi, "ci_method": f"bootstrap({s.n_boot})", "n": int(len(arrays[0]))}
    if kind == "ood":
        assert fn is not None
        f, kw = _boot_kw(fn)
        lo, hi = S.bootstrap_ci_two_sample(
            f, [arrays[0]], [arrays[1]], n_boot=s.n_boot, level=s.ci_level, seed=s.seed, **kw
        )
        return {
            "ci_low": lo,
            "ci_high": hi,
            "ci_method": f"bootstrap2({s.n_boot})",
            "n": int(len(arrays[0])),
            "n_ood": int(len(arrays[1])),
        }
    return {"ci_low": None, "ci_high": None, "ci_method": None, "n": None}


def _value_entry(
    e: ModelEntry, name: str, kind: str, fn: StatFn | None, arr: list[np.ndarray] | None, s: CompareSettings
) -> dict[str, Any]:
    assert e.result is not None
    v: dict[str, Any] = {"value": _finite(e.result.metrics[name])}
    if arr is not None and fn is not None:
        v.update(_value_ci(name, kind, fn, arr, s))
    else:
        v.update({"ci_low": None, "ci_high": None, "ci_method": None, "n": None})
    return {k: (_finite(x) if isinstance(x, float) else x) for k, x in v.items()}


def value_table(entry: ModelEntry, settings: CompareSettings | None = None) -> dict[str, dict[str, Any]]:
    """One model's metrics with their CIs (Wilson or bootstrap, as in a comparison), keyed by metric name."""
    s = settings or CompareSettings()
    if not entry.ok:
        raise UsageError(f"{entry.name}: no result ({entry.error})")
    assert entry.result is not None and entry.arrays is not None
    n_bins = int(entry.result.config.get("n_bins", 15))
    out = {}
    for name in _ordered_metrics([entry]):
        kind, fn, keys = _metric_plan(name, n_bins)
        arr = [entry.arrays[k] for k in keys] if all(k in entry.arrays for k in keys) else None
        out[name] = {
            **_value_entry(entry, name, kind, fn, arr, s),
            "higher_is_better": metric_direction(name),
        }
    return out


def _delta(
    name: str,
    kind: str,
    fn: StatFn | None,
    ref: list[np.ndarray],
    other: list[np.ndarray],
    s: CompareSettings,
) -> dict[str, Any] | None:
    if kind == "none" or fn is None:
        return None
    if kind == "ood" and name.endswith("/auroc"):
        rec = _delta_record(
            S.delong_test(ref[0], ref[1], other[0], other[1], level=s.ci_level), "delong", "delong"
        )
        # delta +- z se is a normal approximation; a difference of two AUROCs lies in [-1, 1].
        rec["ci_low"], rec["ci_high"] = _clip_ci(rec["ci_low"], rec["ci_high"], (-1.0, 1.0))
        return rec
    f, kw = _boot_kw(fn)
    boot = {"n_boot": s.n_boot, "level": s.ci_level, "seed": s.seed, **kw}
    if kind == "ood":
        pb = S.paired_bootstrap_two_sample(f, [ref[0]], [ref[1]], [other[0]], [other[1]], **boot)
    else:
        pb = S.paired_bootstrap(f, ref, other, **boot)
    if kind == "accuracy":
        mc = S.mcnemar_exact(ref[0].astype(bool), other[0].astype(bool))
        rec = _delta_record({**pb, "p_value": mc["p_value"]}, "mcnemar_exact", "paired_bootstrap")
        rec["discordant"] = [int(mc["b01"]), int(mc["b10"])]
        return rec
    return _delta_record(pb, "paired_bootstrap", "paired_bootstrap")


def _delta_record(res: dict[str, Any], test: str, ci_method: str) -> dict[str, Any]:
    """Delta, its CI and the p-value of ``test`` from a stats result."""
    keys = ("delta", "ci_low", "ci_high", "p_value")
    return {**{k: res[k] for k in keys}, "test": test, "ci_method": ci_method}


def _apply_holm(rows: list[dict[str, Any]], others: Sequence[str], alpha: float) -> None:
    for name in others:
        tested = [r for r in rows if name in r["deltas"] and r["deltas"][name].get("p_value") is not None]
        adjusted = S.holm([r["deltas"][name]["p_value"] for r in tested])
        for r, p in zip(tested, adjusted):
            d = r["deltas"][name]
            d["p_holm"] = p
            d["verdict"] = S.verdict(d["delta"], p, r["higher_is_better"], alpha)


def _eps_value(eps: str) -> float:
    if eps.endswith("_255"):
        return float(eps[:-4]) / 255
    return float(eps)


def _roc(sid: np.ndarray, sood: np.ndarray, max_points: int) -> dict[str, Any]:
    scores = np.concatenate([sid, sood])
    pos = np.concatenate([np.zeros(len(sid)), np.ones(len(sood))])
    order = np.argsort(-scores, kind="stable")
    s_sorted, p_sorted = scores[order], pos[order]
    distinct = np.r_[np.nonzero(np.diff(s_sorted))[0], len(s_sorted) - 1]
    tps = np.cumsum(p_sorted)[distinct]
    fps = np.cumsum(1 - p_sorted)[distinct]
    tpr = np.r_[0.0, tps / max(len(sood), 1)]
    fpr = np.r_[0.0, fps / max(len(sid), 1)]
    if len(tpr) > max_points:
        keep = np.unique(np.linspace(0, len(tpr) - 1, max_points).round().astype(int))
        tpr, fpr = tpr[keep], fpr[keep]
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auroc": M.auroc(sid, sood)}


def _subsample(x: np.ndarray, k: int, seed: int) -> list[float]:
    if len(x) > k:
        x = np.random.default_rng(seed).choice(x, size=k, replace=False)
    return [float(v) for v in x]


def _wilson_or_none(correct: np.ndarray | None, s: CompareSettings) -> list[float | None]:
    if correct is None or len(correct) == 0:
        return [None, None]
    lo, hi = S.wilson_ci(int(np.sum(correct)), int(len(correct)), s.ci_level)
    return [_finite(lo), _finite(hi)]


def _plots(entries: Sequence[ModelEntry], s: CompareSettings) -> dict[str, Any]:
    plots: dict[str, Any] = {"reliability": {}, "robust": {}, "roc": {}, "hist": {}}
    for e in entries:
        if not e.ok:
            continue
        assert e.result is not None and e.arrays is not None
        rel = e.result.details.get("reliability", {}).get("uniform")
        if rel:
            plots["reliability"][e.name] = rel
        # Each point is [eps, accuracy, ci_low, ci_high] with a Wilson interval from the per-example array.
        curves: dict[str, list[list[float | None]]] = {}
        clean = e.result.metrics.get("accuracy")
        for name, v in e.result.metrics.items():
            if name.startswith("robust/"):
                _, attack, eps, _ = name.split("/")
                curves.setdefault(attack, []).append(
                    [_eps_value(eps), v, *_wilson_or_none(e.arrays.get(f"robust/{attack}/{eps}/correct"), s)]
                )
        for pts in curves.values():
            if clean is not None and not any(p[0] == 0 for p in pts):
                pts.append([0.0, clean, *_wilson_or_none(e.arrays.get("id/correct"), s)])
            pts.sort(key=lambda p: float(p[0] or 0.0))
        if curves:
            plots["robust"][e.name] = curves
        scores = e.result.config.get("ood_scores", [])
        for o in e.result.data.get("ood", []):
            for sc in scores:
                sid, sood = e.arrays.get(f"id/score/{sc}"), e.arrays.get(f"ood/{o['name']}/score/{sc}")
                if sid is None or sood is None:
                    continue
                plots["roc"].setdefault(e.name, {}).setdefault(o["name"], {})[sc] = _roc(
                    sid, sood, s.max_curve_points
                )
                plots["hist"].setdefault(e.name, {}).setdefault(o["name"], {})[sc] = {
                    "id": _subsample(sid, s.max_hist_points, s.seed),
                    "ood": _subsample(sood, s.max_hist_points, s.seed + 1),
                }
    return plots


def result_warnings(result: EvalResult) -> list[str]:
    """The human sentences a battery run left in ``sanity["warnings"]`` (e.g. near-chance accuracy)."""
    warns = (result.sanity or {}).get("warnings") or []
    if isinstance(warns, str):
        warns = [warns]
    return [" ".join(str(w).split()) for w in warns if str(w).strip()]


def _model_record(e: ModelEntry) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "name": e.name,
        "source": e.source,
        "status": "ok" if e.ok else "failed",
        "error": e.error,
        "group": e.group,
    }
    if e.result is not None:
        card = e.result.model.get("card") or {}
        sp = card.get("sparsity") or {}
        rec["sha256"] = e.result.model.get("sha256")
        rec["arch"] = card.get("arch")
        rec["sparsity"] = {
            "scheme": sp.get("scheme"),
            "target_density": sp.get("target_density"),
            "density": e.result.metrics.get("sparsity/density"),
            "mask_hash": sp.get("mask_hash"),
        }
        layers = (e.result.details.get("sparsity") or {}).get("layers") or {}
        # The audit lists prunable layers in execution order; "depth" keeps that order explicit so plots
        # can align models whose layer lists differ.
        rec["layer_density"] = [
            {"layer": k, "density": v.get("density"), "numel": v.get("numel"), "depth": i}
            for i, (k, v) in enumerate(layers.items())
        ]
        rec["warnings"] = result_warnings(e.result)
        rec["provenance"] = e.result.provenance
        rec["train_metrics"] = card.get("metrics")
    return rec


def build_comparison(
    entries: Sequence[ModelEntry], reference: str | None = None, settings: CompareSettings | None = None
) -> dict[str, Any]:
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
    n_bins = int(ref.result.config.get("n_bins", 15)) if ref.result else 15
    rows: list[dict[str, Any]] = []
    for name in _ordered_metrics(ok):
        kind, fn, keys = _metric_plan(name, n_bins)
        row: dict[str, Any] = {
            "name": name,
            "group": metric_group(name),
            "higher_is_better": metric_direction(name),
            "kind": kind,
            "values": {},
            "deltas": {},
        }
        ref_arrays = (
            [ref.arrays[k] for k in keys] if ref.arrays and all(k in ref.arrays for k in keys) else None
        )
        for e in ok:
            assert e.result is not None and e.arrays is not None
            if name not in e.result.metrics:
                continue
            arr = [e.arrays[k] for k in keys] if all(k in e.arrays for k in keys) else None
            row["values"][e.name] = _value_entry(e, name, kind, fn, arr, s)
            if e is not ref and arr is not None and ref_arrays is not None:
                d = _delta(name, kind, fn, ref_arrays, arr, s)
                if d is not None:
                    row["deltas"][e.name] = {
                        k: (_finite(x) if isinstance(x, float) else x) for k, x in d.items()
                    }
        rows.append(row)
    _apply_holm(rows, [e.name for e in ok if e is not ref], s.alpha)
    first = ref.result
    assert first is not None
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "reference": ref_name,
        "models": [_model_record(e) for e in ordered],
        "metrics": rows,
        "seed_groups": None,
        "plots": _plots(ok, s),
        "settings": {
            "alpha": s.alpha,
            "n_boot": s.n_boot,
            "seed": s.seed,
            "ci_level": s.ci_level,
            "multiple_testing": "holm",
            "tests": {
                "accuracy": "exact McNemar; delta CI paired bootstrap",
                "auroc": "DeLong",
                "other": "paired bootstrap",
            },
        },
        "data": first.data,
        "config": first.config,
        "conventions": first.conventions,
        "provenance": {"inputs": {e.name: (e.result.provenance if e.result else None) for e in ordered}},
    }


def build_group_comparison(
    groups: dict[str, Sequence[ModelEntry]],
    reference: str | None = None,
    settings: CompareSettings | None = None,
) -> dict[str, Any]:
    """Several seeds per model: mean and std over seeds per group, tested at the seed level.

    Members are paired by their training seed (the checkpoint card's ``seed``): a paired t-test over the
    seeds both groups have, when every member has a distinct seed and at least two are shared; Welch's
    t-test over all members otherwise. Holm-corrected across metrics. Example-level statistics are also
    computed between the first members of each group, the reference group first (``example_level``).
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
    rows: list[dict[str, Any]] = []
    metric_names = _ordered_metrics(all_entries)
    for name in metric_names:
        row: dict[str, Any] = {
            "name": name,
            "group": metric_group(name),
            "higher_is_better": metric_direction(name),
            "kind": "seed",
            "values": {},
            "deltas": {},
            "seed_level": {},
        }
        by_seed = {
            g: [
                (_seed_of(e), float(e.result.metrics[name]))
                for e in members
                if e.result and name in e.result.metrics
            ]
            for g, members in ok_groups.items()
        }
        per_group = {g: [v for _, v in pairs] for g, pairs in by_seed.items()}
        for g, vals in per_group.items():
            if not vals:
                continue
            mean = float(np.mean(vals))
            std = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
            half = _t_half_width(vals, s.ci_level)
            bounds = metric_bounds(name)
            clip = f", clipped to {_range_text(bounds)}" if math.isfinite(bounds[1]) else ""
            lo, hi = _clip_ci(mean - half, mean + half, bounds) if half is not None else (None, None)
            row["values"][g] = {
                "value": mean,
                "ci_low": lo,
                "ci_high": hi,
                "n": len(vals),
                # mean +- t sd / sqrt(n) can leave a rate's range with few seeds; clipping keeps it inside.
                "ci_method": "t over seeds" + clip,
                "std": std,
            }
            row["seed_level"][g] = {"mean": mean, "std": std, "n": len(vals)}
        ref_vals = per_group.get(ref_name) or []
        tested = not name.startswith("sparsity/")
        for g, vals in per_group.items():
            if g == ref_name or not vals or not ref_vals:
                continue
            common = _common_seeds(by_seed[ref_name], by_seed[g])
            paired = common is not None
            if paired:
                ref_map, g_map = dict(by_seed[ref_name]), dict(by_seed[g])
                a_vals, b_vals = [ref_map[k] for k in common], [g_map[k] for k in common]
            else:
                a_vals, b_vals = ref_vals, vals
            t = S.seed_level_test(a_vals, b_vals, paired=paired)
            d = {
                "delta": _finite(t["delta"]),
                "p_value": _finite(t["p_value"]) if tested else None,
                "test": t["test"],
                "ci_low": None,
                "ci_high": None,
            }
            if paired:
                d["paired_seeds"] = list(common)
            diffs = np.asarray(b_vals) - np.asarray(a_vals) if paired else None
            half = _t_half_width(list(diffs), s.ci_level) if diffs is not None else None
            if half is not None and d["delta"] is not None:
                lo_b, hi_b = metric_bounds(name)
                width = hi_b - lo_b
                d["ci_low"], d["ci_high"] = _clip_ci(d["delta"] - half, d["delta"] + half, (-width, width))
            if tested:
                _untested_verdict(d, t)
            row["deltas"][g] = d
        rows.append(row)
    _apply_holm(rows, [g for g in ok_groups if g != ref_name], s.alpha)
    for row in rows:
        for d in row["deltas"].values():
            # A t-test on identical values gives p = 1; say what actually happened instead of "n.s.".
            same = abs(d.get("delta") or 0.0) <= 1e-12
            if d.get("zero_variance") and d.get("p_value") is not None and same:
                d["verdict"] = "identical across seeds (zero variance)"
    order = [ref_name] + [g for g in names if g != ref_name]
    firsts = [ok_groups[g][0] for g in order if ok_groups[g]]
    example_level = build_comparison(firsts, firsts[0].name, s) if len(firsts) > 1 else None
    models = []
    for g, members in groups.items():
        rec = _model_record(members[0]) if members else {"name": g}
        rec["warnings"] = [
            f"{e.name}: {w}" for e in members if e.result is not None for w in result_warnings(e.result)
        ]
        rec.update(
            {
                "name": g,
                "members": [_model_record(e) for e in members],
                "status": "ok" if ok_groups[g] else "failed",
                "error": "; ".join(f"{e.name}: {e.error}" for e in members if not e.ok) or None,
            }
        )
        models.append(rec)
    first = ok_groups[ref_name][0].result
    assert first is not None
    plots = _plots(firsts, s)
    for key in plots:
        plots[key] = {
            g: plots[key][e.name]
            for g, e in zip([g for g in order if ok_groups[g]], firsts)
            if e.name in plots[key]
        }
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "reference": ref_name,
        "models": models,
        "metrics": rows,
        "seed_groups": {g: {"members": [e.name for e in members]} for g, members in groups.items()},
        "example_level": example_level,
        "plots": plots,
        "settings": {
            "alpha": s.alpha,
            "n_boot": s.n_boot,
            "seed": s.seed,
            "ci_level": s.ci_level,
            "multiple_testing": "holm",
            "tests": {"seed_level": "paired t-test over shared training seeds, else Welch's t-test"},
        },
        "data": first.data,
        "config": first.config,
        "conventions": first.conventions,
        "provenance": {"inputs": {e.name: (e.result.provenance if e.result else None) for e in all_entries}},
    }


def _range_text(bounds: tuple[float, float]) -> str:
    return f"[{bounds[0]:g}, {bounds[1]:g}]"


def _untested_verdict(d: dict[str, Any], t: dict[str, Any]) -> None:
    """A seed-level delta the t-test could not judge gets a verdict saying why, never a blank."""
    test = str(t.get("test", ""))
    if "zero variance" in test:
        d["zero_variance"] = True
    if d.get("p_value") is not None or d.get("delta") is None:
        return
    if "zero variance" in test:
        side = "higher" if d["delta"] > 0 else "lower"
        d["verdict"] = f"not tested (zero variance across seeds; {side} on every seed)"
    elif "fewer than 2" in test:
        d["verdict"] = "not tested (fewer than 2 seeds per group)"
    else:
        d["verdict"] = "not tested"


def _seed_of(e: ModelEntry) -> int | None:
    card = (e.result.model.get("card") or {}) if e.result is not None else {}
    seed = card.get("seed")
    return int(seed) if isinstance(seed, int) else None


def _common_seeds(a: list[tuple[int | None, float]], b: list[tuple[int | None, float]]) -> list[int] | None:
    """Seeds both groups trained with, when pairing by seed is sound (distinct known seeds, >= 2 shared)."""
    sa, sb = [k for k, _ in a], [k for k, _ in b]
    if None in sa or None in sb or len(set(sa)) != len(sa) or len(set(sb)) != len(sb):
        return None
    common = sorted(set(sa) & set(sb))
    return common if len(common) >= 2 else None


def _t_half_width(vals: Sequence[float], level: float) -> float | None:
    if len(vals) < 2:
        return None
    from scipy import stats as sps

    sd = float(np.std(vals, ddof=1))
    return float(sps.t.ppf(0.5 + level / 2, len(vals) - 1) * sd / math.sqrt(len(vals)))
