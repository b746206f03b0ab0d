"""Study figures (matplotlib's object API, Agg, imported lazily): every metric against density, and the
sparse - dense gap against model size, the paper's two kinds of figure.

- ``<metric>-vs-density``: one panel per value of the varying axes other than scheme, density and seed
  (depth, width, arch, dataset), one line per sparse scheme (mean over seeds, ±std band), the dense twin as
  a horizontal line with its ±std band; density on a log axis.
- ``<metric>-gap-vs-size``: mean(sparse) - mean(dense twin) (the table's Δ, with its t interval over seeds)
  against the dense net's parameter count, one line per (scheme, density). The size is the dense twin's
  ``sparsity/params`` metric (every parameter, as the battery's sparsity audit counts them) when the
  results carry it, else the prunable weights listed in the model card; the x label says which.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evalsuite.report import study as S
from evalsuite.report.plots import _COLORS, _new_figure, figure_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)
SIZE_METRIC = "sparsity/params"
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def slug(metric: str) -> str:
    """A file-name-safe form of a metric name (``ood/photos/msp/auroc`` -> ``ood-photos-msp-auroc``)."""
    return re.sub(r"[^A-Za-z0-9.+=-]+", "-", metric.replace("/", "-")).strip("-") or "metric"


def facet_axes(frame: pd.DataFrame) -> list[str]:
    """Axes that vary besides scheme, density and seed: one panel per combination of their values."""
    return [
        a
        for a in S.frame_axes(frame)
        if a not in ("scheme", "density", S.REPLICATE) and frame[a].nunique(dropna=False) > 1
    ]


def _facet_title(axes: Sequence[str], key: tuple[Any, ...]) -> str:
    return S.col_label(axes, key) or "all results"


def _plain_ticks(ax: Any, values: Sequence[float]) -> None:
    """Ticks at the grid's own values, written plainly (0.05, not 5x10^-2)."""
    from matplotlib.ticker import FixedLocator, NullLocator, StrMethodFormatter

    if values:
        ax.xaxis.set_major_locator(FixedLocator(list(values)))
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.xaxis.set_minor_locator(NullLocator())


def density_figure(frame: pd.DataFrame, metric: str) -> Figure | None:
    """``metric`` against density, one line per scheme, one panel per facet; None without scheme/density."""
    axes_all = S.frame_axes(frame)
    if "scheme" not in axes_all or "density" not in axes_all:
        return None
    sub = frame[frame["metric"] == metric]
    if sub.empty:
        return None
    facets = facet_axes(frame)
    by = [*facets, "scheme", "density"]
    # groupby drops None keys unless told not to; a missing seed is still one replicate
    stats = sub.groupby(by, dropna=False, sort=False)["value"].agg(["mean", "std", "count"]).reset_index()
    keys = S._keys(tuple(S._norm(v) for v in row) for row in stats[facets].itertuples(index=False)) or ((),)
    schemes = [s for s in S._keys((S._norm(v),) for v in stats["scheme"]) if s[0] != S.DENSE]
    colors = {s[0]: _COLORS[i % len(_COLORS)] for i, s in enumerate(schemes)}
    ncols = min(len(keys), 3)
    fig, axs = _new_figure(math.ceil(len(keys) / ncols), ncols, (4.2, 3.4))
    label = S.metric_label(metric)
    for ax, key in zip(axs, keys):
        mask = np.ones(len(stats), dtype=bool)
        for a, v in zip(facets, key):
            mask &= np.array([S._norm(x) == v for x in stats[a]])
        part = stats[mask]
        dense = part[part["scheme"] == S.DENSE]
        if not dense.empty:
            m, sd = float(dense["mean"].mean()), float(np.nan_to_num(dense["std"].mean()))
            ax.axhline(m, color="black", ls="--", lw=1.2, label="dense twin")
            if sd > 0:
                ax.axhspan(m - sd, m + sd, color="black", alpha=0.08, lw=0)
        for (scheme,) in schemes:
            line = part[part["scheme"] == scheme].sort_values("density")
            if line.empty:
                continue
            x = line["density"].to_numpy(float)
            y = line["mean"].to_numpy(float)
            sd_arr = np.nan_to_num(line["std"].to_numpy(float))
            ax.plot(x, y, marker="o", color=colors[scheme], label=str(scheme))
            ax.fill_between(x, y - sd_arr, y + sd_arr, color=colors[scheme], alpha=0.2, lw=0)
        ax.set_xscale("log")
        _plain_ticks(ax, sorted({float(d) for d in part["density"] if d is not None}))
        ax.set_xlabel("density (fraction of weights kept, log scale)")
        ax.set_ylabel(label)
        ax.set_title(_facet_title(facets, key), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axs[len(keys) :]:
        ax.set_visible(False)
    fig.suptitle(f"{label} against density (mean ± std over seeds)")
    return fig


def model_sizes(frame: pd.DataFrame, facets: Sequence[str]) -> tuple[dict[tuple[Any, ...], float], str]:
    """Parameter count of the dense net per facet key, and the words for where it came from."""
    dense = frame[frame["scheme"] == S.DENSE]

    def per_key(part: pd.DataFrame, col: str) -> dict[tuple[Any, ...], float]:
        out: dict[tuple[Any, ...], float] = {}
        for rec in part.to_dict("records"):
            v = rec[col]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            out.setdefault(tuple(S._norm(rec[a]) for a in facets), float(v))
        return out

    sizes = per_key(dense[dense["metric"] == SIZE_METRIC], "value")
    if sizes:
        return sizes, "parameters of the dense net (sparsity/params)"
    sizes = per_key(dense, "prunable_params")
    return sizes, "prunable weights of the dense net (model card)"


def gap_figure(frame: pd.DataFrame, metric: str, alpha: float = 0.05) -> tuple[Figure | None, str]:
    """Δ (sparse - dense twin) of ``metric`` against model size; (None, why) when it cannot be drawn."""
    axes_all = S.frame_axes(frame)
    if "scheme" not in axes_all or "density" not in axes_all:
        return None, "no scheme/density axes"
    facets = facet_axes(frame)
    if not facets:
        return None, "only one model size (no axis varies besides scheme, density and seed)"
    sizes, where = model_sizes(frame, facets)
    if len(set(sizes.values())) < 2:
        return None, "fewer than two model sizes known"
    t = S.study_table(frame, [metric], rows=["scheme", "density"], cols=facets, alpha=alpha)
    lines: dict[tuple[Any, ...], list[tuple[float, float, float | None, float | None]]] = {}
    for (_, r, c), cell in t.cells.items():
        if cell.delta is None or c not in sizes:
            continue
        lines.setdefault(r, []).append((sizes[c], cell.delta, cell.ci_low, cell.ci_high))
    if not lines:
        return None, "no sparse cell has a dense twin"
    fig, (ax,) = _new_figure(1, 1, (6.4, 4.2))
    schemes = list(dict.fromkeys(r[0] for r in lines))
    densities = list(dict.fromkeys(r[1] for r in sorted(lines, key=lambda r: S._value_sort(r[1]))))
    for r in S._keys(lines):
        pts = sorted(lines[r])
        x = np.array([p[0] for p in pts])
        y = np.array([p[1] for p in pts])
        lo = np.array([p[1] - p[2] if p[2] is not None else 0.0 for p in pts])
        hi = np.array([p[3] - p[1] if p[3] is not None else 0.0 for p in pts])
        color = _COLORS[schemes.index(r[0]) % len(_COLORS)]
        marker = _MARKERS[densities.index(r[1]) % len(_MARKERS)]
        ax.errorbar(
            x, y, yerr=[lo, hi], color=color, marker=marker, capsize=3, label=f"{r[0]}, density {r[1]:g}"
        )
    ax.axhline(0.0, color="black", lw=1)
    ax.set_xscale("log")
    _plain_ticks(ax, sorted(set(sizes.values())))
    ax.set_xlabel(f"model size: {where}, log scale")
    label = S.metric_label(metric)
    ax.set_ylabel(f"{label}: sparse − dense")
    ax.set_title(
        f"Gap to the dense twin against model size ({label})\n"
        f"mean over seeds, unadjusted t interval at {1 - alpha:g}"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return fig, where


def study_figures(
    frame: pd.DataFrame, metrics: Sequence[str], alpha: float = 0.05, formats: Sequence[str] = ("png", "pdf")
) -> tuple[dict[str, bytes], list[str]]:
    """``{"accuracy-vs-density.png": bytes, ...}`` and one note per figure left out (with the reason)."""
    files: dict[str, bytes] = {}
    notes: list[str] = []
    for m in metrics:
        fig = density_figure(frame, m)
        if fig is None:
            notes.append(f"{m}: no density figure (the results have no scheme/density axes)")
        else:
            files.update({f"{slug(m)}-vs-density.{f}": figure_bytes(fig, f) for f in formats})
        gap, why = gap_figure(frame, m, alpha)
        if gap is None:
            notes.append(f"{m}: no gap-vs-size figure ({why})")
        else:
            files.update({f"{slug(m)}-gap-vs-size.{f}": figure_bytes(gap, f) for f in formats})
    return files, notes
