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
from evalsuite.core.results import metric_group

if TYPE_CHECKING:
    import pandas as pd

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"]
_STYLES = ["-", "--", ":", "-."]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_PNG_META: dict[str, Any] = {"Software": None}  # no version string: identical input, identical bytes
_GROUP_ORDER = ["clean", "calibration", "ood", "robust", "sparsity"]


def _select(df: pd.DataFrame, metrics: Sequence[str] | None, last: int | None) -> pd.DataFrame:
    if metrics:
        df = df[df["metric"].isin(list(metrics))]
    if last:
        keep = sorted(df["run_id"].unique())[-last:]
        df = df[df["run_id"].isin(keep)]
    return df


def _runs(df: pd.DataFrame) -> list[tuple[int, str]]:
    """(run id, short label) of each run in ``df``, oldest first."""
    out = []
    for rid, g in df.groupby("run_id", sort=True):
        started = g["started"].iloc[0]
        tag = g["tag"].iloc[0]
        date = str(started)[:10] if isinstance(started, str) else ""
        label = tag if isinstance(tag, str) and tag else date
        out.append((int(rid), label))
    return out


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
    rows.sort(key=lambda r: (r[0], _group_key(r[1]), r[1]))
    return runs, rows


def _group_key(metric: str) -> int:
    g = metric_group(metric)
    return _GROUP_ORDER.index(g) if g in _GROUP_ORDER else len(_GROUP_ORDER)


def history_table(df: pd.DataFrame, metrics: Sequence[str] | None = None, last: int | None = 12) -> str:
    """Plain text: one row per (model, metric), one column per run (id over tag or date), oldest left.

    ``last`` keeps the newest runs only (None: all); ``metrics`` restricts to those names.
    """
    df = _select(df, metrics, last)
    if df.empty:
        return "no runs\n"
    runs, rows = _pivot(df)
    header = ["model", "metric", ""] + [f"#{rid}" for rid, _ in runs]
    sub = ["", "", ""] + [label for _, label in runs]
    table = [header, sub]
    for model, metric, hib, values in rows:
        table.append([model, metric, "↑" if hib else "↓"] + [_fmt(values.get(rid)) for rid, _ in runs])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = []
    for r in table:
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _panels(df: pd.DataFrame, metrics: Sequence[str] | None) -> list[tuple[str, list[str]]]:
    """(title, metric names) per panel: one per selected metric, else one per metric group."""
    names = list(dict.fromkeys(df["metric"]))
    if metrics:
        return [(m, [m]) for m in metrics if m in names]
    groups: dict[str, list[str]] = {}
    for m in names:
        g = metric_group(m)
        if g == "sparsity" and not m.endswith("density"):
            g = "sparsity counts"  # parameter and MAC counts would flatten densities on a shared axis
        groups.setdefault(g, []).append(m)
    ordered = sorted(groups.items(), key=lambda kv: _group_key(kv[1][0]))
    return [(ms[0] if len(ms) == 1 else g, ms) for g, ms in ordered]


def history_png(df: pd.DataFrame, metrics: Sequence[str] | None = None, last: int | None = None) -> bytes:
    """The history plot as PNG bytes (see ``plot_history``)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    df = _select(df, metrics, last)
    panels = _panels(df, metrics) if not df.empty else []
    ncols = min(3, max(1, len(panels)))
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    if not panels:
        axes[0].text(0.5, 0.5, "no runs", ha="center", va="center")
        axes[0].set_axis_off()
    runs = _runs(df) if not df.empty else []
    pos = {rid: i for i, (rid, _) in enumerate(runs)}
    models = list(dict.fromkeys(df["model"]))
    color = {m: _COLORS[i % len(_COLORS)] for i, m in enumerate(models)}
    for ax, (title, names) in zip(axes, panels):
        hib = {bool(v) for v in df[df["metric"].isin(names)]["higher_is_better"]}
        arrow = " ↑" if hib == {True} else " ↓" if hib == {False} else ""
        ax.set_title(title + arrow, fontsize=9)
        for j, name in enumerate(names):
            for model in models:
                g = df[(df["model"] == model) & (df["metric"] == name)].sort_values("run_id")
                if g.empty:
                    continue
                x = np.array([pos[int(r)] for r in g["run_id"]], dtype=float)
                y = g["value"].to_numpy(dtype=float)
                label = model if len(names) == 1 else f"{model}: {name.split('/', 1)[-1]}"
                ax.plot(
                    x,
                    y,
                    color=color[model],
                    linestyle=_STYLES[j % len(_STYLES)],
                    marker=_MARKERS[j % len(_MARKERS)],
                    markersize=3,
                    linewidth=1.2,
                    label=label,
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
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([f"#{rid}" for rid, _ in runs], fontsize=7, rotation=45 if len(runs) > 8 else 0)
        ax.tick_params(axis="y", labelsize=7)
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.grid(alpha=0.3)
        n_lines = len(ax.get_lines())
        if n_lines <= 10:
            ax.legend(fontsize=6, loc="best")
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata=_PNG_META)
    return buf.getvalue()


def plot_history(
    df: pd.DataFrame, out_png: str | Path, metrics: Sequence[str] | None = None, last: int | None = None
) -> Path:
    """Write the history PNG: one panel per selected metric (else per metric group), a line per model
    (and per metric within a group), the CI as a band where stored. Written atomically."""
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
        head = "".join(f"<th>#{rid}<br><small>{html.escape(label)}</small></th>" for rid, label in runs)
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
