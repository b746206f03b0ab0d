"""Study tables: many train-and-evaluate jobs (a grid) as one long frame, pivoted into the paper's tables.

The long frame has one row per (job, metric): the grid's axes (dataset, arch, arch kwargs such as width,
scheme, density, seed, recipe axes), then ``job_id``, ``name``, ``metric``, ``value`` (and ``source``,
``prunable_params``, which are not axes). It is built from a folder of results (:func:`load_folder`) or from
``(axes, result JSON text)`` pairs taken from the results store (:func:`load_pairs`).

:func:`study_table` pivots it: rows and columns are combinations of axes, a cell is one metric's mean and
standard deviation over seeds with their count, and every sparse cell carries its difference to the dense
twin (the same values on every axis but scheme and density, scheme ``dense``), tested across seeds with the
seed-group rules of :mod:`evalsuite.report.compare` (a paired t-test when both have exactly the same seeds,
else Welch's), Benjamini-Hochberg-adjusted over all tested cells of a metric. The emitters
(:func:`to_latex`, :func:`to_markdown`, :func:`to_csv`) only render what the table holds. Pure pandas and
numpy: no torch, so a table is rebuilt from JSON anywhere.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evalsuite.core.errors import DataError, UsageError
from evalsuite.core.io import read_json
from evalsuite.core.results import SCHEMA, EvalResult
from evalsuite.metrics import catalogue as K
from evalsuite.metrics import inference as I
from evalsuite.report.compare import _bounds, seed_delta, seed_pairing
from evalsuite.report.to_tex import _TEX_FIT_OPEN as TEX_FIT_OPEN
from evalsuite.report.to_tex import TEX_ESCAPES

log = logging.getLogger(__name__)

DENSE = "dense"
REPLICATE = "seed"
NON_AXES = ("job_id", "name", "metric", "value", "source", "prunable_params")
# axes a sparse cell's dense twin may differ in; every other axis must match
TWIN_FREE = ("scheme", "density")
AXIS_ORDER = ("dataset", "arch")
MISSING = "--"

Key = tuple[Any, ...]


# ------------------------------------------------------------------------------------------- loading


def axes_from_card(result: EvalResult, where: str) -> dict[str, Any]:
    """A result's grid point read off its model card: dataset, arch, arch kwargs, scheme, density, seed."""
    card = result.model.get("card") if isinstance(result.model, dict) else None
    if not isinstance(card, dict) or not card.get("arch"):
        raise DataError(f"{where}: no spec.json beside it and no model card, so its grid axes are unknown")
    sp = card.get("sparsity") or {}
    axes: dict[str, Any] = {"dataset": card.get("dataset"), "arch": card.get("arch")}
    for k, v in (card.get("arch_kwargs") or {}).items():
        axes[k if k not in axes else f"arch_{k}"] = v
    density = sp.get("target_density")
    density = 1.0 if density is None else float(density)
    scheme = sp.get("scheme") or (DENSE if density == 1.0 else None)
    if scheme is None:
        raise DataError(f"{where}: the model card names no sparsity scheme")
    axes["scheme"] = str(scheme)
    axes["density"] = density
    axes["seed"] = card.get("seed")
    return axes


def _prunable_params(result: EvalResult) -> int | None:
    card = result.model.get("card") if isinstance(result.model, dict) else None
    layers = ((card or {}).get("sparsity") or {}).get("layers") or []
    total = sum(int(lay.get("numel") or 0) for lay in layers if isinstance(lay, dict))
    return total or None


def _rows_of(
    axes: Mapping[str, Any], result: EvalResult, job_id: str, name: str, source: str
) -> list[dict[str, Any]]:
    size = _prunable_params(result)
    out = []
    for metric, value in result.metrics.items():
        if value is None or not math.isfinite(float(value)):
            continue  # a metric that could not be computed (NaN in JSON is null): no number to average
        out.append(
            {
                **axes,
                "job_id": job_id,
                "name": name,
                "metric": metric,
                "value": float(value),
                "source": source,
                "prunable_params": size,
            }
        )
    return out


def _check_axes(axes: Mapping[str, Any], where: str) -> dict[str, Any]:
    bad = sorted(k for k in axes if k in NON_AXES)
    if bad:
        raise DataError(f"{where}: axis name(s) {', '.join(bad)} clash with the table's own columns")
    return {str(k): v for k, v in axes.items()}


def _frame(rows: list[dict[str, Any]], points: dict[Key, str]) -> pd.DataFrame:
    if not rows:
        raise DataError("no results found")
    df = pd.DataFrame(rows)
    axes = [c for c in df.columns if c not in NON_AXES]
    df = df[[*axes, *NON_AXES]]
    log.info("study: %d jobs, %d (job, metric) rows, axes %s", len(points), len(df), ", ".join(axes))
    return df


def _add_point(points: dict[Key, str], axes: Mapping[str, Any], where: str) -> None:
    key = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in axes.items()))
    if key in points:
        raise DataError(
            f"{where} and {points[key]} are the same grid point "
            f"({', '.join(f'{k}={v}' for k, v in axes.items())}); keep one"
        )
    points[key] = where


def load_pairs(
    pairs: Iterable[tuple[Mapping[str, Any], str] | tuple[Mapping[str, Any], str, str]], where: str = "store"
) -> pd.DataFrame:
    """The long frame from ``(axes, result JSON text)`` pairs, or ``(axes, text, job_id)`` triples (the
    store's finished jobs); empty axes are read off the model card."""
    rows: list[dict[str, Any]] = []
    points: dict[Key, str] = {}
    for i, item in enumerate(pairs):
        axes, text = item[0], item[1]
        job = str(item[2]) if len(item) > 2 else f"{i}"
        label = f"{where} job {job}"
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, TypeError) as e:
            raise DataError(f"{label}: result JSON does not parse ({e})") from None
        if not isinstance(d, dict):
            raise DataError(f"{label}: not an evalsuite result")
        res = EvalResult.from_dict(d, label)
        ax = _check_axes(axes, label) if axes else axes_from_card(res, label)
        name = str(res.model.get("name") or label)
        label = f"{where} job {job} ({name})"
        _add_point(points, ax, label)
        rows += _rows_of(ax, res, job, name, where)
    return _frame(rows, points)


def _is_result_file(path: Path) -> bool:
    # cheap sniff before parsing: reports, specs and status files are JSON too; a result's JSON opens with
    # its metrics (its schema tag comes last), so a file without them near the start is not parsed
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return path.name == "result.json" or b'"metrics"' in head


def load_folder(folder: str | Path) -> pd.DataFrame:
    """The long frame from every evalsuite result JSON under ``folder`` (``**/result.json`` and any other).

    Axes come from a ``spec.json`` beside the result (a study job folder) when present, else from the
    model card. Jobs whose ``status.json`` says they did not finish are skipped; shard results (partial
    evaluations, merged into result.json) are skipped.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{folder}: no such folder")
    rows: list[dict[str, Any]] = []
    points: dict[Key, str] = {}
    for path in sorted(root.rglob("*.json")):
        if not path.is_file() or path.name in ("spec.json", "status.json") or not _is_result_file(path):
            continue
        d = read_json(path)
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            continue
        res = EvalResult.from_dict(d, str(path))
        if (res.config or {}).get("shard"):
            log.info("study: skipping %s (one shard of a split evaluation)", path)
            continue
        status = path.with_name("status.json")
        if status.is_file():
            st = read_json(status)
            if isinstance(st, dict) and st.get("state") != "done":
                log.warning("study: skipping %s (its job is %s)", path, st.get("state"))
                continue
        spec = path.with_name("spec.json")
        job_id = path.relative_to(root).as_posix()  # unique even for a flat folder of results
        name = str(res.model.get("name") or path.stem)
        if spec.is_file():
            s = read_json(spec)
            if not isinstance(s, dict) or not isinstance(s.get("axes"), dict):
                raise DataError(f"{spec}: not a job spec (no axes)")
            axes = _check_axes(s["axes"], str(spec))
            job_id, name = str(s.get("job_id") or job_id), str(s.get("name") or name)
        else:
            axes = axes_from_card(res, str(path))
        _add_point(points, axes, str(path))
        rows += _rows_of(axes, res, job_id, name, str(path))
    if not rows:
        raise DataError(f"no results found under {folder} (no evalsuite result JSON)")
    return _frame(rows, points)


def frame_axes(frame: pd.DataFrame) -> list[str]:
    """The axis columns of a long frame, in its column order."""
    return [c for c in frame.columns if c not in NON_AXES]


# ------------------------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class CellStat:
    """One metric in one (row, column) cell: seeds, mean, std (ddof 1) and the test against the twin."""

    metric: str
    row: Key
    col: Key
    seeds: tuple[Any, ...]
    values: tuple[float, ...]
    dense: bool
    twin_mean: float | None = None
    twin_n: int | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p: float | None = None
    p_adj: float | None = None
    significant: bool = False
    test: str = ""
    note: str = ""
    best: bool = False

    @property
    def n(self) -> int:
        """Number of seeds (jobs) averaged."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """Mean over seeds."""
        return float(np.mean(self.values))

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds (ddof 1); None with one seed."""
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else None


@dataclass(frozen=True)
class StudyTable:
    """A pivoted study table: ``cells[(metric, row, col)]`` for every combination that has results."""

    metrics: tuple[str, ...]
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    row_keys: tuple[Key, ...]
    col_keys: tuple[Key, ...]
    cells: Mapping[tuple[str, Key, Key], CellStat]
    alpha: float
    fixed: Mapping[str, Any]
    best_within: tuple[str, ...]
    decimals: int
    n_jobs: int

    def cell(self, metric: str, row: Key, col: Key) -> CellStat | None:
        """The cell, or None where the grid has no result."""
        return self.cells.get((metric, row, col))

    def n_tested(self, metric: str) -> int:
        """Cells of ``metric`` with a p-value (the BH family size)."""
        return sum(1 for (m, _, _), c in self.cells.items() if m == metric and c.p is not None)

    def common_n(self) -> int | None:
        """The seed count every cell shares, or None when they differ."""
        ns = {c.n for c in self.cells.values()}
        return ns.pop() if len(ns) == 1 else None

    def frame(self) -> pd.DataFrame:
        """One row per cell: axes, metric, mean, std, n, seeds, twin, delta, CI, p, p_adj, significant."""
        recs = []
        for m in self.metrics:
            for r in self.row_keys:
                for c in self.col_keys:
                    cell = self.cell(m, r, c)
                    if cell is None:
                        continue
                    recs.append(
                        {
                            **dict(zip(self.rows, r)),
                            **dict(zip(self.cols, c)),
                            "metric": m,
                            "mean": cell.mean,
                            "std": cell.std,
                            "n": cell.n,
                            "seeds": " ".join("?" if s is None else str(s) for s in cell.seeds),
                            "dense_twin": cell.dense,
                            "twin_mean": cell.twin_mean,
                            "twin_n": cell.twin_n,
                            "delta": cell.delta,
                            "ci_low": cell.ci_low,
                            "ci_high": cell.ci_high,
                            "p": cell.p,
                            "p_adj": cell.p_adj,
                            "significant": cell.significant,
                            "best": cell.best,
                            "test": cell.test,
                            "note": cell.note,
                        }
                    )
        return pd.DataFrame(recs)


def _value_sort(v: Any) -> tuple[int, Any]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return (3, "")
    if v == DENSE:
        return (0, "")
    if isinstance(v, bool):
        return (2, str(v))
    if isinstance(v, int | float):
        return (1, float(v))
    return (2, str(v))


def _keys(values: Iterable[Key]) -> tuple[Key, ...]:
    return tuple(sorted(set(values), key=lambda k: tuple(_value_sort(v) for v in k)))


def _norm(v: Any) -> Any:
    """One marker (None) for a missing key value: pandas turns None into NaN in numeric columns."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def resolve_metrics(frame: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    """The requested metric names (fnmatch globs allowed) among those present, in catalogue order; by
    default the catalogue's primary metrics present. UsageError naming the present ones for an unknown one."""
    present = list(dict.fromkeys(frame["metric"]))
    if not metrics:
        chosen = sorted(K.primary_metrics(present), key=K.sort_key)
        if not chosen:
            raise UsageError("no primary metric in the results; name some with --metrics")
        return chosen
    out: list[str] = []
    for m in metrics:
        hits = fnmatch.filter(present, m) if any(ch in m for ch in "*?[") else [m] if m in present else []
        if not hits:
            known = ", ".join(sorted(present, key=K.sort_key))
            raise UsageError(f"unknown metric {m!r}; the results have: {known}")
        out += [h for h in sorted(hits, key=K.sort_key) if h not in out]
    return out


def default_layout(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Default layout: rows scheme, density (those present); cols every other axis that varies but seed."""
    axes = frame_axes(frame)
    rows: list[str] = [a for a in ("scheme", "density") if a in axes]
    varying = [a for a in axes if a not in rows and a != REPLICATE and frame[a].nunique(dropna=False) > 1]
    if not rows:
        rows, varying = varying[:1], varying[1:]
    return rows, varying


def check_layout(frame: pd.DataFrame, rows: Sequence[str], cols: Sequence[str]) -> dict[str, Any]:
    """Refuse unknown, repeated or overlapping axes, and an axis left out of both that varies (its values
    would be pooled into one cell). Returns the axes that are fixed (one value) outside rows and cols."""
    axes = frame_axes(frame)
    if not rows:
        raise UsageError("--rows needs at least one axis")
    for flag, names in (("--rows", rows), ("--cols", cols)):
        for a in names:
            if a not in axes:
                raise UsageError(f"{flag}: unknown axis {a!r}; the results' axes: {', '.join(axes)}")
        dup = sorted({a for a in names if list(names).count(a) > 1})
        if dup:
            raise UsageError(f"{flag} names {', '.join(dup)} twice")
    both = [a for a in rows if a in cols]
    if both:
        raise UsageError(f"--rows and --cols overlap: {', '.join(both)} (an axis goes in one of them)")
    fixed: dict[str, Any] = {}
    for a in axes:
        if a in rows or a in cols or a == REPLICATE:
            continue
        vals = list(dict.fromkeys(_norm(v) for v in frame[a]))
        if len(vals) > 1:
            shown = ", ".join(str(v) for v in vals[:6])
            raise UsageError(
                f"axis {a!r} has {len(vals)} values ({shown}) but is in neither --rows nor --cols; "
                "add it to one of them (or table each value apart)"
            )
        fixed[a] = vals[0]
    return fixed


def _fmt(x: float, decimals: int, metric: str) -> str:
    if K.kind_of(metric) == "count":
        return f"{x:,.0f}"
    return f"{x:.{decimals}f}"


def study_table(
    frame: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    rows: Sequence[str] | None = None,
    cols: Sequence[str] | None = None,
    alpha: float = 0.05,
    decimals: int = 3,
    best_within: Sequence[str] = ("scheme",),
) -> StudyTable:
    """Pivot the long frame: ``rows`` x ``cols`` axes, one cell per metric with mean, std and n over seeds.

    A sparse cell's Δ is mean(sparse) - mean(dense twin), the twin being the dense jobs with the cell's
    values on every row and column axis except scheme and density; it is tested across seeds
    (:func:`~evalsuite.report.compare.seed_pairing`, :func:`~evalsuite.report.compare.seed_delta`) and the
    p-values of one metric are Benjamini-Hochberg-adjusted across all its tested cells; ``significant`` is
    p_adj < alpha. Untested metrics (the catalogue's descriptive ones, e.g. sparsity counts) get Δ only.
    ``best`` marks, per column, the best mean at ``decimals`` precision (direction from the catalogue) among
    the sparse rows that differ only in the ``best_within`` axes (every sparse row of the column when none
    of them is a row axis); the dense twin never competes and a lone row is not marked.
    """
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"--alpha must be in (0, 1), got {alpha}")
    if decimals < 0 or decimals > 10:
        raise UsageError(f"decimals must be in 0..10, got {decimals}")
    chosen = resolve_metrics(frame, metrics)
    if rows is None and cols is None:
        rows_l, cols_l = default_layout(frame)
    else:
        rows_l = list(rows) if rows is not None else default_layout(frame)[0]
        cols_l = list(cols) if cols is not None else []
    fixed = check_layout(frame, rows_l, cols_l)
    has_scheme = "scheme" in rows_l or "scheme" in cols_l
    twin_axes = [a for a in [*rows_l, *cols_l] if a not in TWIN_FREE]
    sub = frame[frame["metric"].isin(chosen)]
    # (metric, row, col) -> [(seed, value)]; dense twins by (metric, twin key)
    groups: dict[tuple[str, Key, Key], list[tuple[Any, float]]] = {}
    twins: dict[tuple[str, Key], list[tuple[Any, float]]] = {}
    dense_of: dict[tuple[str, Key, Key], bool] = {}
    recs = sub.to_dict("records")
    for rec in recs:
        r = tuple(_norm(rec[a]) for a in rows_l)
        c = tuple(_norm(rec[a]) for a in cols_l)
        seed = _norm(rec[REPLICATE]) if REPLICATE in rec else None
        key = (rec["metric"], r, c)
        groups.setdefault(key, []).append((seed, float(rec["value"])))
        is_dense = "scheme" in rec and rec["scheme"] == DENSE
        dense_of[key] = is_dense
        if is_dense:
            tk = (rec["metric"], tuple(_norm(rec[a]) for a in twin_axes))
            twins.setdefault(tk, []).append((seed, float(rec["value"])))
    row_keys = _keys(k[1] for k in groups)
    col_keys = _keys(k[2] for k in groups)
    cells: dict[tuple[str, Key, Key], CellStat] = {}
    for key in sorted(groups, key=lambda k: (chosen.index(k[0]), row_keys.index(k[1]), col_keys.index(k[2]))):
        metric, r, c = key
        pairs = sorted(groups[key], key=lambda p: _value_sort(p[0]))
        seeds, values = tuple(s for s, _ in pairs), tuple(v for _, v in pairs)
        if dense_of[key] or not has_scheme:
            cells[key] = CellStat(metric, r, c, seeds, values, dense=dense_of[key])
            continue
        lookup = dict(zip(rows_l, r)) | dict(zip(cols_l, c))
        twin = twins.get((metric, tuple(lookup[a] for a in twin_axes)))
        if not twin:
            cells[key] = CellStat(metric, r, c, seeds, values, False, note="no dense twin in the results")
            continue
        twin = sorted(twin, key=lambda p: _value_sort(p[0]))
        paired, why = seed_pairing("dense twin", [s for s, _ in twin], "sparse", list(seeds))
        if paired:
            tmap, smap = dict(twin), dict(pairs)
            order = sorted(tmap, key=_value_sort)
            a, b = [tmap[k] for k in order], [smap[k] for k in order]
        else:
            a, b = [v for _, v in twin], list(values)
        res = seed_delta(a, b, paired, alpha, _bounds(metric))
        ref = K.find(metric)
        tested = ref is not None and ref.family.tested
        note = str(res.get("reason") or "")
        if not tested:
            note = "descriptive metric (not tested)"
        cells[key] = CellStat(
            metric,
            r,
            c,
            seeds,
            values,
            dense=False,
            twin_mean=float(np.mean([v for _, v in twin])),
            twin_n=len(twin),
            delta=float(res["delta"]),
            ci_low=res["ci_low"] if tested else None,
            ci_high=res["ci_high"] if tested else None,
            p=res["p_value"] if tested else None,
            test=("paired t" if paired else "Welch t") + f": {why}",
            note=note,
        )
    cells = _adjust(cells, chosen, alpha)
    cells = _mark_best(cells, rows_l, list(best_within), decimals)
    return StudyTable(
        metrics=tuple(chosen),
        rows=tuple(rows_l),
        cols=tuple(cols_l),
        row_keys=row_keys,
        col_keys=col_keys,
        cells=cells,
        alpha=alpha,
        fixed=fixed,
        best_within=tuple(best_within),
        decimals=decimals,
        n_jobs=int(sub["job_id"].nunique()),
    )


def _replace(cell: CellStat, **kw: Any) -> CellStat:
    return replace(cell, **kw)


def _adjust(
    cells: dict[tuple[str, Key, Key], CellStat], metrics: Sequence[str], alpha: float
) -> dict[tuple[str, Key, Key], CellStat]:
    """Benjamini-Hochberg over every tested cell of one metric (the table is the family)."""
    out = dict(cells)
    for m in metrics:
        keys = [k for k, c in cells.items() if k[0] == m and c.p is not None]
        adj = I.benjamini_hochberg([cells[k].p for k in keys])  # type: ignore[misc]
        for k, p in zip(keys, adj):
            out[k] = _replace(cells[k], p_adj=p, significant=bool(p < alpha))
    return out


def _mark_best(
    cells: dict[tuple[str, Key, Key], CellStat], rows: Sequence[str], within: Sequence[str], decimals: int
) -> dict[tuple[str, Key, Key], CellStat]:
    free = [i for i, a in enumerate(rows) if a in within]
    out = dict(cells)
    contests: dict[tuple[str, Key, Key], list[tuple[str, Key, Key]]] = {}
    for k, c in cells.items():
        if c.dense or K.find(k[0]) is None:
            continue
        anchor = tuple(v for i, v in enumerate(k[1]) if i not in free) if free else ()
        contests.setdefault((k[0], anchor, k[2]), []).append(k)
    for (metric, _, _), keys in contests.items():
        if len(keys) < 2:
            continue
        sign = 1.0 if K.higher_is_better(metric) else -1.0
        # compare what the reader sees: means equal at the shown precision tie
        shown = {k: round(sign * cells[k].mean, decimals) for k in keys}
        top = max(shown.values())
        for k in keys:
            if shown[k] == top:
                out[k] = _replace(out[k], best=True)
    return out


# ------------------------------------------------------------------------------------------- labels


def metric_label(metric: str) -> str:
    """Display name with its direction arrow (↑ higher is better, ↓ lower)."""
    ref = K.find(metric)
    if ref is None:
        return metric
    return f"{ref.display()} {'↑' if ref.higher_is_better else '↓'}"


def _axis_value(axis: str, v: Any) -> str:
    if v is None:
        return "?"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def col_label(axes: Sequence[str], key: Key) -> str:
    """``width 8`` / ``arch resnet20, width 2``; empty with no column axes."""
    return ", ".join(f"{a} {_axis_value(a, v)}" for a, v in zip(axes, key))


def caption(t: StudyTable, *, dagger: str = "†", pm: str = "±", delta: str = "Δ") -> str:
    """What the table shows and how it was tested, in one paragraph (plain text)."""
    n = t.common_n()
    parts = [
        f"Mean {pm} std over seeds"
        + (
            f" (n = {n} per cell)."
            if n is not None
            else "; n is given in each cell where seed counts differ."
        )
    ]
    if any(c.delta is not None for c in t.cells.values()):
        tested = {m: t.n_tested(m) for m in t.metrics}
        fam = ", ".join(f"{metric_label(m)}: {k}" for m, k in tested.items() if k)
        parts.append(
            f"{delta}: sparse minus its dense twin (the same axes with scheme dense), tested across seeds "
            "with a paired t-test when both have exactly the same seeds, else Welch's t-test; "
            f"{dagger}: p < {t.alpha:g} after Benjamini-Hochberg over the tested cells of each metric"
            + (f" ({fam})." if fam else ".")
        )
    within = [a for a in t.best_within if a in t.rows]
    if any(c.best for c in t.cells.values()):
        among = (
            f"among the sparse rows that differ only in {', '.join(within)}"
            if within
            else "among the sparse rows"
        )
        parts.append(f"Bold: best per column {among} (↑ higher is better, ↓ lower is better).")
    if t.fixed:
        parts.append("Fixed: " + ", ".join(f"{a} {_axis_value(a, v)}" for a, v in t.fixed.items()) + ".")
    parts.append(f"{t.n_jobs} jobs.")
    return " ".join(parts)


def cell_parts(t: StudyTable, cell: CellStat) -> dict[str, str]:
    """A cell's text pieces: mean, std, n (only where it differs from the common n), delta, mark."""
    d = t.decimals
    n = t.common_n()
    out = {
        "mean": _fmt(cell.mean, d, cell.metric),
        "std": _fmt(cell.std, d, cell.metric) if cell.std is not None else "",
        "n": "" if n is not None else str(cell.n),
        "delta": "",
        "mark": "†" if cell.significant else "",
    }
    if cell.delta is not None:
        s = _fmt(abs(cell.delta), d, cell.metric)
        out["delta"] = ("-" if cell.delta < 0 and float(s.replace(",", "")) != 0 else "+") + s
    return out


# ------------------------------------------------------------------------------------------- emitters


def _grid(t: StudyTable, render: Any) -> tuple[list[str], list[tuple[Key, list[str]]]]:
    """(column headers, [(row key, cell texts)]) with one column per (metric, column key)."""
    heads = [(m, c) for m in t.metrics for c in t.col_keys]
    body = []
    for r in t.row_keys:
        texts = []
        for m, c in heads:
            cell = t.cell(m, r, c)
            texts.append(render(cell) if cell is not None else None)
        if any(x is not None for x in texts):
            body.append((r, [x if x is not None else MISSING for x in texts]))
    return [f"{m}\x00{col_label(t.cols, c)}" for m, c in heads], body


def to_markdown(t: StudyTable) -> str:
    """A GitHub-flavoured Markdown table with the caption under it."""
    from evalsuite.report.to_md import esc

    def render(cell: CellStat) -> str:
        p = cell_parts(t, cell)
        text = p["mean"] + (f" ± {p['std']}" if p["std"] else "")
        if cell.best:
            text = f"**{text}**"
        if p["n"]:
            text += f" (n={p['n']})"
        if p["delta"]:
            text += f" (Δ {p['delta'].replace('-', '−')}{p['mark']})"
        return esc(text)

    heads, body = _grid(t, render)
    cols = [esc(a) for a in t.rows] + [
        esc(metric_label(h.split("\x00")[0]) + (f" · {h.split(chr(0))[1]}" if h.split("\x00")[1] else ""))
        for h in heads
    ]
    lines = [
        "| " + " | ".join(cols) + " |",
        "|" + "|".join([":---"] * len(t.rows) + ["---:"] * len(heads)) + "|",
    ]
    for r, texts in body:
        lines.append("| " + " | ".join([esc(_axis_value(a, v)) for a, v in zip(t.rows, r)] + texts) + " |")
    return "\n".join(lines) + "\n\n" + f"*{esc(caption(t))}*\n"


# the report's escapes (one table of them), plus what study tables print and reports do not
_TEX = {
    **TEX_ESCAPES,
    "|": r"\ensuremath{|}",
    "↑": r"\ensuremath{\uparrow}",
    "†": r"\ensuremath{^\dagger}",
}


def tex_escape(s: str) -> str:
    """Plain text as LaTeX text (specials escaped; arrows, ±, Δ, † as math symbols)."""
    return "".join(_TEX.get(ch, ch) for ch in s)


def to_latex(t: StudyTable, label: str = "tab:study") -> str:
    """A booktabs ``table`` (pandas Styler, hrules), shrunk to the line width when wider: it compiles with
    the booktabs and graphicx packages."""

    def render(cell: CellStat) -> str:
        p = cell_parts(t, cell)
        text = p["mean"] + (rf" $\pm$ {p['std']}" if p["std"] else "")
        if cell.best:
            text = rf"\textbf{{{text}}}"
        if p["n"]:
            text += f" (n={p['n']})"
        if p["delta"]:
            sign = "$-$" if p["delta"].startswith("-") else "$+$"
            text += rf" ($\Delta$ {sign}{p['delta'][1:]}" + (r"$^\dagger$" if p["mark"] else "") + ")"
        return text

    heads, body = _grid(t, render)
    top = [""] * len(t.rows) + [tex_escape(metric_label(h.split("\x00")[0])) for h in heads]
    sub = [tex_escape(a) for a in t.rows] + [tex_escape(h.split("\x00")[1]) for h in heads]
    columns = (
        pd.MultiIndex.from_arrays([top, sub]) if t.cols else pd.Index(sub[: len(t.rows)] + top[len(t.rows) :])
    )
    data, prev = [], None
    for r, texts in body:
        # blank a row axis value repeated from the row above (as far as the row above agrees), like multirow
        shown = [tex_escape(_axis_value(a, v)) for a, v in zip(t.rows, r)]
        if prev is not None:
            for i in range(len(r) - 1):
                if r[: i + 1] != prev[: i + 1]:
                    break
                shown[i] = ""
        prev = r
        data.append(shown + texts)
    df = pd.DataFrame(data, columns=columns)
    text = df.style.hide(axis="index").to_latex(
        hrules=True,
        column_format="l" * len(t.rows) + "r" * len(heads),
        multicol_align="c",
        position_float="centering",
        environment="table",
        caption=tex_escape(caption(t)),
        label=label,
    )
    if t.cols:
        # a rule under each metric's spanning header, between its columns only
        k, rules = len(t.rows), []
        for i in range(len(t.metrics)):
            a = k + i * len(t.col_keys) + 1
            rules.append(f"\\cmidrule(lr){{{a}-{a + len(t.col_keys) - 1}}}")
        lines = text.split("\n")
        at = lines.index("\\toprule") + 2
        lines.insert(at, " ".join(rules))
        text = "\n".join(lines)
    # a study table with many metrics x columns is wider than a page: shrink it to the line width (never
    # enlarge), as compare's tables do; this needs graphicx besides booktabs
    text = text.replace("\\begin{tabular}", TEX_FIT_OPEN + "\n\\begin{tabular}", 1)
    return text.replace("\\end{tabular}", "\\end{tabular}\n}", 1)


def to_csv(t: StudyTable) -> str:
    """The machine-readable table: one row per cell."""
    return t.frame().to_csv(index=False, lineterminator="\n")


# ------------------------------------------------------------------------------------------- writing

TABLE_FILES = ("table.tex", "table.md", "table.csv")


def check_table_target(out_dir: str | Path, inputs: Sequence[str | Path] = (), force: bool = False) -> Path:
    """Refuse an output folder that is, holds or lies inside an input, or exists without ``force`` (or
    holds files evalsuite did not write). Call before any work."""
    from evalsuite.report.write import check_report_target

    out = Path(out_dir).absolute()
    for i in inputs:
        ip = Path(i)
        if ip.is_dir() and out.resolve() != ip.resolve() and ip.resolve() in out.resolve().parents:
            raise UsageError(f"--out {out_dir} lies inside the input folder {i}; write the table elsewhere")
    return check_report_target(out_dir, [str(i) for i in inputs], force)


def write_study(
    table: StudyTable,
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    force: bool = False,
    inputs: Sequence[str | Path] = (),
    figures: bool = True,
) -> tuple[Path, list[str], list[str]]:
    """Write table.tex, table.md, table.csv and figures/ into ``out_dir`` all at once (a report folder with
    its marker, so ``force`` replaces only an earlier one). Returns (folder, files written, notes on
    figures left out)."""
    from evalsuite.report import write as W

    out = check_table_target(out_dir, inputs, force)
    files: dict[str, bytes] = {
        "table.tex": to_latex(table).encode("utf-8"),
        "table.md": to_markdown(table).encode("utf-8"),
        "table.csv": to_csv(table).encode("utf-8"),
    }
    notes: list[str] = []
    if figures:
        from evalsuite.report.study_plots import study_figures

        figs, notes = study_figures(frame, table.metrics, table.alpha)
        files.update({f"figures/{k}": v for k, v in figs.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    W.clean_leftovers(out)
    tmp = W._make_temp_dir(out)
    try:
        for rel, data in files.items():
            target = tmp / rel
            target.parent.mkdir(exist_ok=True)
            W._write(target, data)
        marker = {"schema": W.MARKER_SCHEMA, "files": sorted(files)}
        W._write(tmp / W.MARKER, (json.dumps(marker, indent=1) + "\n").encode("utf-8"))
        if figures:
            W._fsync_dir(tmp / "figures")
        W._fsync_dir(tmp)
        W._swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    W._fsync_dir(out.parent)
    return out, sorted(files), notes
