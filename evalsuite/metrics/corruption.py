"""Corruption-shift aggregates (Hendrycks & Dietterich 2019) as pure numpy functions.

Inputs are *grids*: a mapping ``(corruption, severity) -> value`` holding one number per corrupted set
(accuracy in [0, 1], NLL or ECE), as the battery measures them. A grid must be rectangular: every
corruption has the same severities. Outputs are plain Python floats and dicts, so a report can rebuild
them from saved results without torch.

Conventions (also in ``CONVENTIONS``):

- error = 1 - accuracy (top-1), both as fractions, never percentages.
- CE_c = sum_s E(model, c, s) / sum_s E(ref, c, s); mCE = mean over corruptions of CE_c.
- relative CE_c = sum_s (E(model, c, s) - E(model, clean)) / sum_s (E(ref, c, s) - E(ref, clean));
  relative mCE = mean over corruptions of relative CE_c.
- The reference is whichever model the caller passes: in evalsuite it is the comparison's reference
  (the dense twin), not AlexNet as in the paper's ImageNet-C tables. The paper prints CE x 100 (percent);
  these functions return the ratio, so the reference itself scores exactly 1.0.
- A CE or relative CE whose denominator is not positive (the reference makes no errors on c, or loses
  no accuracy under c) is undefined and returned as NaN; a mean over corruptions with a NaN is NaN.
- Means over a grid weight every (corruption, severity) cell equally, which on a rectangular grid is the
  mean over corruptions of the per-corruption mean over severities.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

Grid = Mapping[tuple[str, int], float]
"""``(corruption, severity) -> value``: one number per corrupted set."""

PREFIX = "corruption"
_RESERVED = ("mean", "severity", "mce", "relative_mce")
_NAME = re.compile(r"^[a-z0-9_]+$")

CONVENTIONS: dict[str, Any] = {
    "error": "1 - top-1 accuracy, as a fraction",
    "ce": "sum over severities of model error / sum over severities of reference error, per corruption",
    "mce": "mean over corruptions of CE (a ratio; the paper prints it x 100)",
    "relative_ce": (
        "sum over severities of (model error - model clean error) / "
        "sum over severities of (reference error - reference clean error), per corruption"
    ),
    "relative_mce": "mean over corruptions of relative CE",
    "reference": "the comparison's reference model (the dense twin), not AlexNet",
    "undefined": "CE or relative CE with a non-positive denominator is NaN, and so is a mean containing it",
    "means": "every (corruption, severity) cell weighs the same; per-severity means average over corruptions",
}


# ----------------------------------------------------------------------------------------------- validation


def as_table(values: Grid, what: str = "grid") -> tuple[list[str], list[int], np.ndarray]:
    """A rectangular grid as (corruptions in first-seen order, sorted severities, float64 [C, S] table).

    ValueError if the grid is empty, not rectangular, holds a non-finite value, or a name is unusable in a
    metric name (lowercase letters, digits and ``_``; not one of the reserved aggregate names).
    """
    if not values:
        raise ValueError(f"{what} is empty")
    corruptions: list[str] = []
    by_corruption: dict[str, dict[int, float]] = {}
    for key, value in values.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"{what}: keys must be (corruption, severity), got {key!r}")
        name, severity = key
        if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
            raise ValueError(f"{what}: bad corruption name {name!r}")
        if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity < 1:
            raise ValueError(f"{what}: severity must be a positive integer, got {severity!r}")
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{what}: value for {name} severity {severity} is {v}")
        if name not in by_corruption:
            corruptions.append(name)
            by_corruption[name] = {}
        by_corruption[name][int(severity)] = v
    severities = sorted(by_corruption[corruptions[0]])
    for name in corruptions:
        if sorted(by_corruption[name]) != severities:
            raise ValueError(
                f"{what} is not rectangular: {name} has severities {sorted(by_corruption[name])}, "
                f"{corruptions[0]} has {severities}"
            )
    table = np.array([[by_corruption[c][s] for s in severities] for c in corruptions], dtype=np.float64)
    return corruptions, severities, table


def _accuracy_table(values: Grid, what: str) -> tuple[list[str], list[int], np.ndarray]:
    corruptions, severities, table = as_table(values, what)
    if (table < 0).any() or (table > 1).any():
        raise ValueError(f"{what}: accuracies must lie in [0, 1]")
    return corruptions, severities, table


def _clean(acc: float, what: str) -> float:
    a = float(acc)
    if not (0.0 <= a <= 1.0):
        raise ValueError(f"{what} must be an accuracy in [0, 1], got {acc!r}")
    return a


def _paired(model: Grid, ref: Grid) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Model and reference error tables over the same cells, rows in the model's corruption order."""
    corruptions, severities, acc = _accuracy_table(model, "model accuracy grid")
    ref_corruptions, ref_severities, ref_acc = _accuracy_table(ref, "reference accuracy grid")
    if set(ref_corruptions) != set(corruptions) or ref_severities != severities:
        raise ValueError(
            f"model and reference grids differ: model {sorted(corruptions)} x {severities}, "
            f"reference {sorted(ref_corruptions)} x {ref_severities}"
        )
    order = [ref_corruptions.index(c) for c in corruptions]
    return corruptions, 1.0 - acc, 1.0 - ref_acc[order]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


# ---------------------------------------------------------------------------------------------- aggregates


def grid_mean(values: Grid) -> float:
    """Mean over every (corruption, severity) cell, e.g. the mean corruption accuracy."""
    return float(as_table(values)[2].mean())


def mean_corruption_accuracy(acc: Grid) -> float:
    """Mean top-1 accuracy over all corruptions and severities (each cell weighs the same)."""
    return float(_accuracy_table(acc, "accuracy grid")[2].mean())


def severity_means(values: Grid) -> dict[int, float]:
    """Per severity, the mean over corruptions: the curve of accuracy, NLL or ECE against severity."""
    _, severities, table = as_table(values)
    return {s: float(v) for s, v in zip(severities, table.mean(axis=0))}


def corruption_means(values: Grid) -> dict[str, float]:
    """Per corruption, the mean over its severities."""
    corruptions, _, table = as_table(values)
    return {c: float(v) for c, v in zip(corruptions, table.mean(axis=1))}


def corruption_errors(acc: Grid, ref_acc: Grid) -> dict[str, float]:
    """CE_c = sum_s (1 - acc[c, s]) / sum_s (1 - ref_acc[c, s]) per corruption (NaN if the sum is 0)."""
    corruptions, err, ref_err = _paired(acc, ref_acc)
    ce = _ratio(err.sum(axis=1), ref_err.sum(axis=1))
    return {c: float(v) for c, v in zip(corruptions, ce)}


def mean_corruption_error(acc: Grid, ref_acc: Grid) -> float:
    """mCE: the mean over corruptions of ``corruption_errors`` (1.0 for the reference itself)."""
    return float(np.mean(list(corruption_errors(acc, ref_acc).values())))


def relative_corruption_errors(
    acc: Grid, clean_acc: float, ref_acc: Grid, ref_clean_acc: float
) -> dict[str, float]:
    """Relative CE_c = sum_s (E[c, s] - E_clean) / sum_s (E_ref[c, s] - E_ref_clean) per corruption.

    How much more accuracy the model loses to c than the reference does; NaN where the reference
    loses none (a non-positive denominator).
    """
    corruptions, err, ref_err = _paired(acc, ref_acc)
    e_clean = 1.0 - _clean(clean_acc, "clean_acc")
    r_clean = 1.0 - _clean(ref_clean_acc, "ref_clean_acc")
    rel = _ratio((err - e_clean).sum(axis=1), (ref_err - r_clean).sum(axis=1))
    return {c: float(v) for c, v in zip(corruptions, rel)}


def relative_mean_corruption_error(acc: Grid, clean_acc: float, ref_acc: Grid, ref_clean_acc: float) -> float:
    """Relative mCE: the mean over corruptions of ``relative_corruption_errors``."""
    rel = relative_corruption_errors(acc, clean_acc, ref_acc, ref_clean_acc)
    return float(np.mean(list(rel.values())))


# ------------------------------------------------------------------------------------------------- names


def cell_name(corruption: str, severity: int, metric: str) -> str:
    """``corruption/<corruption>/<severity>/<metric>``, the name of one per-set metric."""
    return f"{PREFIX}/{corruption}/{severity}/{metric}"


def corruption_metrics(
    grids: Mapping[str, Grid],
    *,
    clean_acc: float | None = None,
    ref_acc: Grid | None = None,
    ref_clean_acc: float | None = None,
) -> dict[str, float]:
    """Named per-cell values and aggregates for one model.

    ``grids`` maps a metric (``accuracy``, ``nll``, ``ece``, ...) to its grid. Returns, for each metric m:
    ``corruption/<c>/<s>/m`` per cell, ``corruption/mean/m`` over all cells and
    ``corruption/severity/<s>/m`` per severity. With ``ref_acc`` (and ``grids['accuracy']``):
    ``corruption/<c>/ce`` and ``corruption/mce``; with also ``clean_acc`` and ``ref_clean_acc``:
    ``corruption/<c>/relative_ce`` and ``corruption/relative_mce``.
    """
    out: dict[str, float] = {}
    for metric, grid in grids.items():
        if not _NAME.match(metric):
            raise ValueError(f"bad metric name {metric!r}")
        corruptions, severities, table = as_table(grid, f"{metric} grid")
        for i, c in enumerate(corruptions):
            for j, s in enumerate(severities):
                out[cell_name(c, s, metric)] = float(table[i, j])
        out[f"{PREFIX}/mean/{metric}"] = float(table.mean())
        for j, s in enumerate(severities):
            out[f"{PREFIX}/severity/{s}/{metric}"] = float(table[:, j].mean())
    if ref_acc is None:
        if clean_acc is not None or ref_clean_acc is not None:
            raise ValueError("clean accuracies are used only with a reference grid (ref_acc)")
        return out
    if "accuracy" not in grids:
        raise ValueError("CE and mCE need grids['accuracy']")
    acc = grids["accuracy"]
    ce = corruption_errors(acc, ref_acc)
    for c, v in ce.items():
        out[f"{PREFIX}/{c}/ce"] = v
    out[f"{PREFIX}/mce"] = float(np.mean(list(ce.values())))
    if (clean_acc is None) != (ref_clean_acc is None):
        raise ValueError("relative mCE needs both clean_acc and ref_clean_acc")
    if clean_acc is not None and ref_clean_acc is not None:
        rel = relative_corruption_errors(acc, clean_acc, ref_acc, ref_clean_acc)
        for c, v in rel.items():
            out[f"{PREFIX}/{c}/relative_ce"] = v
        out[f"{PREFIX}/relative_mce"] = float(np.mean(list(rel.values())))
    return out
