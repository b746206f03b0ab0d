"""Comparison plots with matplotlib's object API (``Figure`` + Agg canvas), never pyplot: no global
backend switch, no figure registry to leak, safe in threads and inside other people's notebooks.

Each figure is drawn only when the comparison carries its data; PNG and PDF bytes are reproducible
(no dates or software versions in the metadata).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from evalsuite.metrics import catalogue as K
from evalsuite.report.model import Comparison as TypedComparison
from evalsuite.report.model import to_json_dict

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn, never at import time
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# The comparison's JSON form (schema 2, or 1): plots read only models, metric values and the plot data.
Comparison = dict[str, Any]

PNG_DPI = 110
_PNG_META: dict[str, Any] = {"Software": None}
_PDF_META: dict[str, Any] = {"CreationDate": None, "Producer": None, "Creator": None}
_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"]


def ok_models(comp: Comparison) -> list[str]:
    """Names of models whose evaluation succeeded, reference first."""
    names = [m["name"] for m in comp.get("models", []) if m.get("status", "ok") == "ok"]
    ref = comp.get("reference")
    return ([ref] if ref in names else []) + [n for n in names if n != ref]


def _json_form(comp: TypedComparison | Mapping[str, Any]) -> Comparison:
    return to_json_dict(comp) if isinstance(comp, TypedComparison) else dict(comp)


def _figure(figsize: tuple[float, float]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _colors(comp: Comparison) -> dict[str, str]:
    """One color per model, the same in every figure."""
    return {m: _COLORS[i % len(_COLORS)] for i, m in enumerate(ok_models(comp))}


def _new_figure(nrows: int, ncols: int, panel: tuple[float, float] = (3.4, 3.0)) -> tuple[Figure, list[Axes]]:
    fig = _figure((panel[0] * ncols, panel[1] * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def _finite(x: Any) -> TypeGuard[float]:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _metric_value(comp: Comparison, name: str, model: str) -> float | None:
    for row in comp.get("metrics", []):
        if row.get("name") == name:
            v = ((row.get("values") or {}).get(model) or {}).get("value")
            return float(v) if _finite(v) else None
    return None


def _ordered(nested: dict[str, dict[str, Any]]) -> list[str]:
    """Inner keys over all outer entries, in order of first appearance."""
    keys: list[str] = []
    for inner in nested.values():
        keys += [k for k in (inner or {}) if k not in keys]
    return keys


def _floats(xs: Any) -> np.ndarray:
    """JSON list with None for missing entries -> float array with NaN."""
    return np.array([np.nan if x is None else x for x in (xs or [])], dtype=float)


def _hide_unused(axes: list[Axes], used: int) -> None:
    for ax in axes[used:]:
        ax.set_visible(False)


# ---------------------------------------------------------------- reliability


def reliability_figure(comp: Comparison) -> Figure | None:
    """One panel per model: accuracy per confidence bin against the diagonal, the gap to mean confidence."""
    data = (comp.get("plots") or {}).get("reliability") or {}
    models = [m for m in ok_models(comp) if data.get(m)]
    if not models:
        return None
    ncols = min(len(models), 4)
    nrows = math.ceil(len(models) / ncols)
    fig, axes = _new_figure(nrows, ncols, (3.2, 3.2))
    for ax, m in zip(axes, models):
        d = data[m]
        lower, upper = _floats(d.get("lower")), _floats(d.get("upper"))
        k = len(lower)
        counts = np.nan_to_num(_floats(d.get("counts") or [0] * k))
        acc = _floats(d.get("accuracy") or [None] * k)
        conf = _floats(d.get("confidence") or [None] * k)
        keep = (counts > 0) & np.isfinite(acc) & np.isfinite(lower) & np.isfinite(upper)
        width = upper - lower
        ax.bar(
            lower[keep],
            acc[keep],
            width=width[keep],
            align="edge",
            color="#4c72b0",
            edgecolor="#203864",
            linewidth=0.6,
            label="accuracy per bin",
        )
        gap = keep & np.isfinite(conf)
        if gap.any():
            ax.bar(
                lower[gap],
                conf[gap] - acc[gap],
                bottom=acc[gap],
                width=width[gap],
                align="edge",
                color="#d62728",
                alpha=0.3,
                edgecolor="#d62728",
                hatch="//",
                linewidth=0.5,
                label="gap to mean confidence",
            )
        ax.plot([0, 1], [0, 1], ls="--", color="0.4", lw=1, label="perfect calibration")
        ece = _metric_value(comp, "ece", m)
        if ece is None and gap.any() and counts[gap].sum() > 0:
            # Same estimator as the metric: count-weighted mean |accuracy - confidence| over bins.
            ece = float(np.sum(counts[gap] * np.abs(acc[gap] - conf[gap])) / counts.sum())
        ax.set_title(f"{m}\nECE {ece:.4f}" if ece is not None else m, fontsize=10)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_aspect("equal")
        ax.legend(loc="upper left", fontsize=7, frameon=False)
    _hide_unused(axes, len(models))
    return fig


# ---------------------------------------------------------------- robustness


def _eps_255(eps: list[float]) -> bool:
    return all(abs(e * 255 - round(e * 255)) < 1e-6 for e in eps) and max(eps, default=0) <= 1


ATTACK_TITLES = {
    "fgsm": "FGSM (L∞)",
    "pgd_linf": "PGD (L∞)",
    "pgd_l2": "PGD (L2)",
    "pgd": "PGD (L∞)",
    "autoattack": "AutoAttack",
    "apgd_ce": "APGD-CE",
    "cw": "C&W",
}


def attack_title(attack: str) -> str:
    """'pgd_linf' -> 'PGD (L∞)'; unknown names are upper-cased with spaces for underscores."""
    if attack in ATTACK_TITLES:
        return ATTACK_TITLES[attack]
    head, _, norm = attack.partition("_")
    norms = {"linf": "L∞", "l2": "L2", "l1": "L1"}
    if norm in norms:
        return f"{head.upper()} ({norms[norm]})"
    return attack.replace("_", " ").upper()


def _eps_label(e: float) -> str:
    k = round(e * 255)
    return "0" if k == 0 else f"{k}/255"


def robust_figure(comp: Comparison) -> Figure | None:
    """One panel per attack: accuracy against eps, one line per model (eps 0 is clean accuracy), with
    the 95 % Wilson interval of each point as a band where the comparison carries it."""
    data = (comp.get("plots") or {}).get("robust") or {}
    models = [m for m in ok_models(comp) if data.get(m)]
    attacks = _ordered({m: data[m] for m in models})
    if not attacks:
        return None
    colors = _colors(comp)
    fig, axes = _new_figure(1, len(attacks), (3.8, 3.2))
    for ax, attack in zip(axes, attacks):
        all_eps = [float(p[0]) for m in models for p in (data[m].get(attack) or [])]
        in_255 = bool(all_eps) and _eps_255(all_eps)
        for m in models:
            # Points are [eps, acc] (older comparisons) or [eps, acc, ci_low, ci_high].
            pts = sorted(
                (
                    (float(p[0]), float(p[1]), *[*p[2:4], None, None][:2])
                    for p in (data[m].get(attack) or [])
                    if len(p) >= 2 and _finite(p[1])
                ),
                key=lambda p: p[0],
            )
            if not pts:
                continue
            xs = np.array([p[0] for p in pts])
            ys = np.array([p[1] for p in pts])
            ax.plot(xs, ys, marker="o", ms=4, color=colors[m], label=m)
            lo, hi = _floats([p[2] for p in pts]), _floats([p[3] for p in pts])
            if np.isfinite(lo).any():
                ax.fill_between(xs, lo, hi, color=colors[m], alpha=0.18, linewidth=0)
        ax.set_title(attack_title(attack), fontsize=10)
        if in_255:
            ticks = sorted(set(all_eps))
            ax.set_xticks(ticks)
            rot = 45 if len(ticks) > 5 else 0
            ax.set_xticklabels([_eps_label(e) for e in ticks], fontsize=7, rotation=rot)
            ax.set_xlabel("ε (L∞, in 255ths of the pixel range)")
        else:
            ax.set_xlabel("ε (L2 radius, pixel units in [0, 1])" if "l2" in attack else "ε")
        ax.set_ylabel("robust accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, title="model (band: 95% CI)", title_fontsize=7)
    return fig


# ---------------------------------------------------------------- OOD


def _primary_score(comp: Comparison, scores: list[str]) -> str:
    """The score of the first OOD metric in the table, so histograms match what the reader saw first."""
    for row in comp.get("metrics", []):
        ref = K.find(str(row.get("name", "")))
        if ref is not None and ref.group == "ood" and ref.params.get("score") in scores:
            return ref.params["score"]
    return scores[0]


def _models_sets_scores(comp: Comparison, data: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """Models with OOD plot data, the OOD sets in display order, and every score any of them has."""
    models = [m for m in ok_models(comp) if data.get(m)]
    sets = _ordered({m: data[m] for m in models})
    scores: list[str] = []
    for m in models:
        for s in sets:
            scores += [k for k in (data[m].get(s) or {}) if k not in scores]
    return models, sets, scores


def roc_figure(comp: Comparison) -> Figure | None:
    """Rows are OOD sets, columns scores; one ROC curve per model with its AUROC (OOD positive)."""
    data = (comp.get("plots") or {}).get("roc") or {}
    models, sets, scores = _models_sets_scores(comp, data)
    if not sets or not scores:
        return None
    colors = _colors(comp)
    fig, axes = _new_figure(len(sets), len(scores), (3.2, 3.2))
    for i, s in enumerate(sets):
        for j, score in enumerate(scores):
            ax = axes[i * len(scores) + j]
            for m in models:
                c = (data[m].get(s) or {}).get(score)
                if not c:
                    continue
                au = c.get("auroc")
                label = f"{m} ({au:.3f})" if _finite(au) else m
                ax.plot(c["fpr"], c["tpr"], color=colors[m], lw=1.3, label=label)
            ax.plot([0, 1], [0, 1], ls=":", color="0.5", lw=1)
            ax.set_title(f"{s} · {score}", fontsize=10)
            ax.set_xlabel("FPR (ID flagged)")
            ax.set_ylabel("TPR (OOD flagged)")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.01)
            ax.set_aspect("equal")
            ax.legend(title="AUROC", fontsize=7, title_fontsize=7, loc="lower right", frameon=False)
    return fig


# 1 - max softmax is 0 in float32 for very confident predictions; the log axis needs a floor.
MSP_FLOOR = 1e-7


def msp_tail(scores: np.ndarray) -> np.ndarray:
    """MSP scores (-max softmax) as 1 - max softmax, floored at MSP_FLOOR for a log axis."""
    return np.maximum(1.0 + scores, MSP_FLOOR)


def hist_figure(comp: Comparison) -> Figure | None:
    """Rows are models, columns OOD sets: ID vs OOD score distributions for the primary score.

    MSP piles up near max softmax 1 on a trained net, so its histogram is drawn as 1 - max softmax on a
    log axis with log-spaced bins; other scores on a linear axis.
    """
    data = (comp.get("plots") or {}).get("hist") or {}
    models, sets, scores = _models_sets_scores(comp, data)
    if not sets or not scores:
        return None
    score = _primary_score(comp, scores)
    log_msp = score == "msp"
    fig, axes = _new_figure(len(models), len(sets), (3.4, 2.4))
    for i, m in enumerate(models):
        for j, s in enumerate(sets):
            ax = axes[i * len(sets) + j]
            h = (data[m].get(s) or {}).get(score) or {}
            id_s = np.asarray([x for x in h.get("id") or [] if _finite(x)], dtype=float)
            ood_s = np.asarray([x for x in h.get("ood") or [] if _finite(x)], dtype=float)
            if log_msp:
                id_s, ood_s = msp_tail(id_s), msp_tail(ood_s)
            both = np.concatenate([id_s, ood_s])
            if both.size:
                # Shared bins so the two distributions are comparable bar for bar.
                if log_msp:
                    lo, hi = float(both.min()), float(both.max())
                    bins = np.geomspace(lo, max(hi, lo * 10), 41)
                else:
                    bins = np.histogram_bin_edges(both, bins=40)
                # Bar height = fraction of the set in the bin (not a density per unit x, which on a log
                # axis would shrink every wide bin on the right to nothing).
                for x, color, label in ((id_s, "#1f77b4", "ID"), (ood_s, "#ff7f0e", f"OOD: {s}")):
                    if x.size:
                        w = np.full(x.size, 1.0 / x.size)
                        ax.hist(x, bins=bins.tolist(), weights=w, alpha=0.55, color=color, label=label)
                ax.legend(fontsize=7, frameon=False)
            if log_msp:
                ax.set_xscale("log")
                ax.set_xlabel("1 − max softmax (log; right = more OOD)", fontsize=8)
            else:
                ax.set_xlabel(f"{score} score (higher = more OOD)", fontsize=8)
            ax.set_title(f"{m} · {s}", fontsize=10)
            ax.set_ylabel("fraction per bin", fontsize=8)
            ax.tick_params(labelsize=7)
    return fig


# ---------------------------------------------------------------- sparsity


def layer_order(per_model: list[list[dict[str, Any]]]) -> list[str]:
    """Layer names of several models in depth order, aligned where the models' layer lists differ.

    Each model's layers carry ``depth`` (their position in execution order; list order where absent).
    A layer's place is its mean relative depth (depth / (layers - 1)) over the models that have it, so a
    deeper model's extra layers fall between the shallower model's, never after its last layer.
    """
    rel: dict[str, list[float]] = {}
    first: dict[str, tuple[int, int]] = {}
    for k, layers in enumerate(per_model):
        depths = [d.get("depth", i) for i, d in enumerate(layers)]
        depths = [x if _finite(x) else i for i, x in enumerate(depths)]
        top = max(max(depths, default=0), 1)
        for d, x in zip(layers, depths):
            rel.setdefault(d["layer"], []).append(float(x) / top)
            first.setdefault(d["layer"], (k, int(x)))
    return sorted(rel, key=lambda n: (float(np.mean(rel[n])), first[n]))


def layer_density_figure(comp: Comparison) -> Figure | None:
    """Kept fraction of each prunable layer, one line per model, layers in depth (execution) order."""
    models = {m["name"]: m for m in comp.get("models", [])}
    names = [n for n in ok_models(comp) if (models[n].get("layer_density") or [])]
    if not names:
        return None
    layers = layer_order([models[n]["layer_density"] for n in names])
    index = {name: i for i, name in enumerate(layers)}
    colors = _colors(comp)
    fig = _figure((min(max(6.0, 0.28 * len(layers) + 2), 16), 4.2))
    ax = fig.add_subplot()
    for n in names:
        pts = sorted(
            (index[d["layer"]], d["density"]) for d in models[n]["layer_density"] if _finite(d.get("density"))
        )
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", ms=3.5, lw=1.2, color=colors[n], label=n)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("density (fraction kept)")
    ax.set_xlabel("layer (execution order, input → output)")
    ax.grid(alpha=0.3)
    if len(layers) <= 60:
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels([name.removesuffix(".weight") for name in layers], rotation=90, fontsize=6)
    ax.legend(fontsize=8, frameon=False)
    return fig


# ---------------------------------------------------------------- corruption shift


def corruption_figure(comp: Comparison) -> Figure | None:
    """Accuracy and ECE against corruption severity (mean over corruptions), one line per model, from
    the ``corruption/severity/<s>/{accuracy,ece}`` rows; severity 0 is the clean test set where measured."""
    sevs = sorted(
        {
            int(ref.params["severity"])
            for row in comp.get("metrics", [])
            if (ref := K.find(str(row.get("name")))) is not None
            and ref.family.key in ("corruption_severity_accuracy", "corruption_severity_ece")
        }
    )
    if not sevs:
        return None
    colors = _colors(comp)
    fig, axes = _new_figure(1, 2, (3.8, 3.2))
    for ax, leaf, label in zip(axes, ("accuracy", "ece"), ("accuracy", "ECE")):
        drawn = False
        for m in ok_models(comp):
            pts = [(0, _metric_value(comp, leaf, m))]
            pts += [(s, _metric_value(comp, f"corruption/severity/{s}/{leaf}", m)) for s in sevs]
            kept = [(x, y) for x, y in pts if y is not None]
            if not any(x > 0 for x, _ in kept):
                continue
            ax.plot([x for x, _ in kept], [y for _, y in kept], marker="o", ms=4, color=colors[m], label=m)
            drawn = True
        ax.set_xticks([0, *sevs])
        ax.set_xticklabels(["clean", *(str(s) for s in sevs)])
        ax.set_xlabel("corruption severity")
        ax.set_ylabel(f"{label} (mean over corruptions)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=7, frameon=False, title="model", title_fontsize=7)
    return fig


# ---------------------------------------------------------------- entry points

_BUILDERS = {
    "reliability": reliability_figure,
    "robust": robust_figure,
    "ood_roc": roc_figure,
    "ood_hist": hist_figure,
    "layer_density": layer_density_figure,
    "corruption": corruption_figure,
}


def make_plots(comp: TypedComparison | Mapping[str, Any]) -> dict[str, Figure]:
    """Every figure the comparison has data for, by name (reliability, robust, ood_roc, ood_hist,
    layer_density, corruption)."""
    comp = _json_form(comp)
    figs = {}
    for name, build in _BUILDERS.items():
        fig = build(comp)
        if fig is not None:
            figs[name] = fig
    return figs


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    """PNG or PDF bytes without timestamps or version strings, so reruns give identical files."""
    buf = io.BytesIO()
    meta = _PNG_META if fmt == "png" else _PDF_META if fmt == "pdf" else None
    fig.savefig(buf, format=fmt, dpi=PNG_DPI, metadata=meta)
    return buf.getvalue()


def plot_files(
    comp: TypedComparison | Mapping[str, Any], formats: tuple[str, ...] = ("png", "pdf")
) -> dict[str, bytes]:
    """``{"reliability.png": b"...", ...}`` for every figure and format."""
    return {
        f"{name}.{fmt}": figure_bytes(fig, fmt) for name, fig in make_plots(comp).items() for fmt in formats
    }


def save_plots(comp: TypedComparison | Mapping[str, Any], folder: str | Path) -> list[Path]:
    """Write every figure as PNG and PDF into ``folder`` (created if missing); return the paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fname, data in plot_files(comp).items():
        p = out / fname
        p.write_bytes(data)
        paths.append(p)
    return paths
