"""The plot data a comparison carries (curves, histograms, reliability bins), from results and arrays.

Subsampled so comparison.json stays small; ``report.plots`` draws it from the JSON alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from evalsuite import metrics as M
from evalsuite.metrics import catalogue as K
from evalsuite.metrics import stats as S

if TYPE_CHECKING:
    from evalsuite.report.compare import ModelEntry


@dataclass(frozen=True)
class PlotSettings:
    """Limits and settings of the plot data: CI level, subsampling seed and maximum points per plot."""

    ci_level: float = 0.95
    seed: int = 0
    max_curve_points: int = 200
    max_hist_points: int = 2000


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and np.isfinite(float(x)) else None


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


def _wilson_or_none(correct: np.ndarray | None, s: PlotSettings) -> list[float | None]:
    if correct is None or len(correct) == 0:
        return [None, None]
    lo, hi = S.wilson_ci(int(np.sum(correct)), len(correct), s.ci_level)
    return [_finite(lo), _finite(hi)]


def plot_data(entries: Sequence[ModelEntry], s: PlotSettings) -> dict[str, Any]:
    """Plot data of the successful models: reliability, robustness curves, ROC curves and score histograms."""
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
            ref = K.find(name)
            if ref is not None and ref.family.key == "robust_accuracy":
                attack, eps = ref.params["attack"], ref.params["eps"]
                curves.setdefault(attack, []).append(
                    [K.eps_value(eps), v, *_wilson_or_none(e.arrays.get(ref.array_keys()[0]), s)]
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
