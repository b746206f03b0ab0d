"""Metric history of a suite over runs: a compact text table, a PNG and a self-contained HTML page.

All three take the long DataFrame of ``ResultStore.history(suite)`` (columns ``HISTORY_COLUMNS``).
Plots use matplotlib's object API (``Figure`` + Agg canvas), never pyplot, like ``evalsuite.report``.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalsuite.core.io import atomic_write_bytes
from evalsuite.metrics import catalogue as K

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"]
_STYLES = ["-", "--", ":", "-."]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_PNG_META: dict[str, Any] = {"Software": None}  # no version string: identical input, identical bytes


def _select(df: pd.DataFrame, metrics: Sequence[str] | None, last: int | None) -> pd.DataFrame:
    if metrics:
        df = df[df["metric"].isin(list(metrics))]
    if last:
        keep = sorted(df["run_id"].unique())[-last:]
        df = df[df["run_id"].isin(keep)]
    return df


# short panel titles (the report's are K.GROUP_TITLES); the sparsity group splits into two panels
_GROUP_TITLES = {
    "clean": "Clean",
    "calibration": "Calibration",
    "ood": "OOD detection",
    "robust": "Adversarial robustness",
    "sparsity": "Sparsity (density)",
    "sparsity counts": "Sparsity (counts)",
}


def _run_info(df: pd.DataFrame) -> list[tuple[int, Any, str]]:
    """(run id, start time as a UTC pandas Timestamp or None, tag or '') of each run, oldest first."""
    import pandas as pd

    out = []
    for rid, g in df.groupby("run_id", sort=True):
        started, tag = g["started"].iloc[0], g["tag"].iloc[0]
        when = pd.to_datetime(started, utc=True, errors="coerce") if isinstance(started, str) else None
        out.append(
            (int(rid), None if when is None or pd.isna(when) else when, tag if isinstance(tag, str) else "")
        )
    return out


def _date_labels(info: list[tuple[int, Any, str]]) -> list[str]:
    """Each run's date (YYYY-MM-DD), with the UTC time where two runs share a day; '?' if unknown."""
    days = [w.strftime("%Y-%m-%d") if w is not None else "?" for _, w, _ in info]
    return [
        f"{d} {w.strftime('%H:%M')}" if w is not None and days.count(d) > 1 else d
        for d, (_, w, _) in zip(days, info)
    ]


def _runs(df: pd.DataFrame) -> list[tuple[int, str]]:
    """(run id, short label: tag, else date) of each run in ``df``, oldest first."""
    info = _run_info(df)
    return [(rid, tag or date) for (rid, _, tag), date in zip(info, _date_labels(info))]


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    v = float(v)
    if v.is_integer() and abs(v) >= 1e4:
        return f"{int(v):d}"
    return f"{v:.4g}"


def _pivot(df: pd.DataFrame) -> tuple[list[tuple[int, str]], list[tuple[str, str, bool, dict[int, Any]]]]:
    runs = _runs(df)
    rows = []
    for (model, metric), g in df.groupby(["model", "metric"], sort=False):
        hib = bool(g["higher_is_better"].iloc[-1])
        rows.append((str(model), str(metric), hib, dict(zip(g["run_id"].astype(int), g["value"]))))
    rows.sort(key=lambda r: (r[0], K.group_rank(r[1]), r[1]))
    return runs, rows


def history_table(df: pd.DataFrame, metrics: Sequence[str] | None = None, last: int | None = 12) -> str:
    """Plain text: one row per (model, metric), one column per run (its date over run id and tag), oldest
    left.

    ``last`` keeps the newest runs only (None: all); ``metrics`` restricts to those names.
    """
    df = _select(df, metrics, last)
    if df.empty:
        return "no runs\n"
    runs, rows = _pivot(df)
    info = _run_info(df)
    header = ["model", "metric", "", *_date_labels(info)]
    sub = ["", "", ""] + [f"#{rid}" + (f" {tag}" if tag else "") for rid, _, tag in info]
    table = [header, sub]
    for model, metric, hib, values in rows:
        table.append([model, metric, "↑" if hib else "↓"] + [_fmt(values.get(rid)) for rid, _ in runs])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = []
    for r in table:
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _panels(df: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """(title, metric names) per panel: one panel per metric group, in the report's group order."""
    names = list(dict.fromkeys(df["metric"]))
    groups: dict[str, list[str]] = {}
    for m in names:
        g = K.group_of(m)
        if g == "sparsity" and K.kind_of(m) == "count":
            g = "sparsity counts"  # parameter and MAC counts would flatten densities on a shared axis
        groups.setdefault(g, []).append(m)
    ordered = sorted(groups.items(), key=lambda kv: (K.group_rank(kv[1][0]), kv[0]))
    return [(_GROUP_TITLES.get(g, g), ms) for g, ms in ordered]


def _short(metric: str) -> str:
    """The metric within its panel: 'robust/pgd_linf/8_255/accuracy' -> 'pgd_linf 8/255',
    'ood/svhn/msp/auroc' -> 'svhn/msp/auroc', 'sparsity/density' -> 'density'."""
    ref = K.find(metric)
    if ref is None:
        return metric
    if ref.family.key == "robust_accuracy":  # the only robust family: attack and eps say it all
        return f"{ref.params['attack']} {ref.params['eps'].replace('_', '/')}"
    return metric.removeprefix(f"{ref.group}/")


def history_figure(df: pd.DataFrame, metrics: Sequence[str] | None = None, last: int | None = None) -> Figure:
    """One panel per metric group (clean, calibration, OOD, robust, sparsity density, sparsity counts),
    a labelled line per (model, metric) against the run's date, its CI as a band where stored.

    Colour = model, line style and marker = metric; the x axis is a date axis (UTC); tagged runs are
    marked with a dotted vertical line and the tag. Falls back to run numbers if a run has no date.
    """
    import matplotlib.dates as mdates
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    df = _select(df, metrics, last)
    panels = _panels(df) if not df.empty else []
    ncols = min(2, max(1, len(panels)))
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig = Figure(figsize=(6.4 * ncols, 3.6 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    if not panels:
        axes[0].text(0.5, 0.5, "no runs", ha="center", va="center")
        axes[0].set_axis_off()
    info = _run_info(df) if not df.empty else []
    dated = bool(info) and all(w is not None for _, w, _ in info)
    # Naive UTC datetimes: matplotlib's date converter handles them without a timezone setting.
    xval = {rid: (np.datetime64(w.tz_convert(None)) if dated else rid) for rid, w, _ in info}
    models = list(dict.fromkeys(df["model"]))
    color = {m: _COLORS[i % len(_COLORS)] for i, m in enumerate(models)}
    for ax, (title, names) in zip(axes, panels):
        ax.set_title(title, fontsize=10)
        for j, name in enumerate(names):
            for model in models:
                g = df[(df["model"] == model) & (df["metric"] == name)].sort_values("run_id")
                if g.empty:
                    continue
                x = np.array([xval[int(r)] for r in g["run_id"]])
                y = g["value"].to_numpy(dtype=float)
                arrow = "↑" if bool(g["higher_is_better"].iloc[-1]) else "↓"
                ax.plot(
                    x,
                    y,
                    color=color[model],
                    linestyle=_STYLES[j % len(_STYLES)],
                    marker=_MARKERS[j % len(_MARKERS)],
                    markersize=3,
                    linewidth=1.2,
                    label=f"{model} · {_short(name)} {arrow}",
                )
                lo = g["ci_low"].to_numpy(dtype=float)
                hi = g["ci_high"].to_numpy(dtype=float)
                ok = np.isfinite(lo) & np.isfinite(hi)
                if ok.any():
                    ax.fill_between(
                        x,
                        np.where(ok, lo, np.nan),
                        np.where(ok, hi, np.nan),
                        color=color[model],
                        alpha=0.15,
                        linewidth=0,
                    )
        for rid, _, tag in info:
            if tag:
                ax.axvline(xval[rid], color="0.5", linestyle=":", linewidth=0.8)
                ax.annotate(
                    tag,
                    (xval[rid], 1.0),
                    xycoords=("data", "axes fraction"),
                    fontsize=6,
                    color="0.35",
                    ha="left",
                    va="top",
                    rotation=90,
                )
        if dated:
            locator = mdates.AutoDateLocator(minticks=2, maxticks=8)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
            ax.set_xlabel("run date (UTC)", fontsize=8)
        else:
            ax.set_xticks([xval[rid] for rid, _, _ in info])
            ax.set_xlabel("run", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    return fig


def history_png(df: pd.DataFrame, metrics: Sequence[str] | None = None, last: int | None = None) -> bytes:
    """The history plot as PNG bytes (see ``history_figure``)."""
    fig = history_figure(df, metrics, last)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata=_PNG_META)
    return buf.getvalue()


def plot_history(
    df: pd.DataFrame, out_png: str | Path, metrics: Sequence[str] | None = None, last: int | None = None
) -> Path:
    """Write the history PNG (see ``history_figure``): one panel per metric group, dates on the x axis,
    a labelled line per model and metric. Written atomically."""
    return atomic_write_bytes(out_png, history_png(df, metrics, last))


def history_html(df: pd.DataFrame, png_bytes: bytes | None, title: str = "evalsuite history") -> str:
    """A self-contained HTML page: the plot (as a data: URI) and the history table. No external URLs."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:12px}"
        "th,td{border:1px solid #ccc;padding:2px 6px}td.n{text-align:right;font-variant-numeric:tabular-nums}"
        "img{max-width:100%}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if png_bytes:
        data = base64.b64encode(png_bytes).decode("ascii")
        parts.append(f'<img src="data:image/png;base64,{data}" alt="metric history">')
    if df.empty:
        parts.append("<p>no runs</p>")
    else:
        runs, rows = _pivot(df)
        info = _run_info(df)
        head = "".join(
            f"<th>{html.escape(date)}<br><small>#{rid}{html.escape(' ' + tag if tag else '')}</small></th>"
            for (rid, _, tag), date in zip(info, _date_labels(info))
        )
        parts.append(f"<table><thead><tr><th>model</th><th>metric</th><th></th>{head}</tr></thead><tbody>")
        for model, metric, hib, values in rows:
            cells = "".join(f'<td class="n">{html.escape(_fmt(values.get(rid)))}</td>' for rid, _ in runs)
            parts.append(
                f"<tr><td>{html.escape(model)}</td><td>{html.escape(metric)}</td>"
                f"<td>{'↑' if hib else '↓'}</td>{cells}</tr>"
            )
        parts.append("</tbody></table>")
        revs = {
            int(r): (str(g) if isinstance(g, str) else "")
            for r, g in df.groupby("run_id")["git_revision"].first().items()
        }
        parts.append(
            "<p><small>git revisions: "
            + html.escape(", ".join(f"#{r} {g[:12] or '-'}" for r, g in sorted(revs.items())))
            + "</small></p>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
