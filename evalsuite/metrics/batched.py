"""Vectorized (batched) versions of the scalar metrics, for ``stats.bootstrap_*(..., batched=True)``.

Each ``*_b`` function takes arrays with a leading replicate axis, ``[b, N]`` (ID / examples) and ``[b, M]``
(OOD), and returns ``[b]`` float64 values equal to the scalar metric applied row by row: exactly for
:func:`mean_b`, the calibration errors, :func:`auroc_b` and :func:`fpr_at_tpr_b`; to a few ulps for the
average precisions (a different but equivalent summation order). Given plain [N] arrays instead (as
``paired_bootstrap`` passes for the full-data statistic) they return a float. numpy only, no per-row Python
loop; rows are processed in blocks of about ``2**17`` elements (cache-sized; bounds memory too).

How the OOD metrics avoid a per-row ``searchsorted``: both sides are sorted per row (``np.sort``, SIMD), then
a *stable* argsort of the concatenation ``[sorted OOD, sorted ID]`` merges the two runs (timsort: linear) with
OOD first among equal values. The position ``p_j`` of the j-th sorted OOD score in that merge gives
``#ID < s_j = p_j - j``; the position ``r_i`` of the i-th sorted ID score gives ``#OOD <= s_i = r_i - i``;
ties come from tie groups of the sorted rows (first/last equal index, by accumulates over flattened rows).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike

from evalsuite.metrics import classification as _cls
from evalsuite.metrics import ood as _ood
from evalsuite.metrics.classification import DEFAULT_BINS

# Rows are handled about this many elements at a time: the [rows, N + M] intermediates then stay in cache,
# which measured 1.5-2x faster than blocks of 2**22 (memory-bound elementwise passes).
_BLOCK_ELEMENTS = 2**17

_F = TypeVar("_F", bound=Callable[..., Any])


# ----------------------------------------------------------------------------------------------- helpers


def _rows(x: ArrayLike, name: str, dtype: type | None = np.float64) -> np.ndarray:
    a = np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} must have shape [b, N] with b, N > 0, got {a.shape}")
    return a


def _no_nan(*named: tuple[str, np.ndarray]) -> None:
    for name, a in named:
        if np.isnan(a).any():
            raise ValueError(f"{name} contains NaN")


def _accepts_1d(n_arrays: int) -> Callable[[_F], _F]:
    """Let a batched metric also take plain [N] arrays (as ``paired_bootstrap`` does for the full-data
    statistic): its first ``n_arrays`` arguments then get a replicate axis of 1, and it returns a float."""

    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if len(args) >= n_arrays and all(np.ndim(a) == 1 for a in args[:n_arrays]):
                rows = [np.asarray(a)[None] for a in args[:n_arrays]]
                return float(fn(*rows, *args[n_arrays:], **kwargs)[0])
            return fn(*args, **kwargs)

        return cast(_F, inner)

    return wrap


def _blocks(b: int, width: int) -> Iterator[slice]:
    step = max(1, _BLOCK_ELEMENTS // max(width, 1))
    for s in range(0, b, step):
        yield slice(s, min(s + step, b))


def _scores(scores_id: ArrayLike, scores_ood: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s_id = _rows(scores_id, "scores_id")
    s_ood = _rows(scores_ood, "scores_ood")
    if s_id.shape[0] != s_ood.shape[0]:
        raise ValueError(
            f"scores_id and scores_ood need the same number of rows, got {s_id.shape[0]}, {s_ood.shape[0]}"
        )
    _no_nan(("scores_id", s_id), ("scores_ood", s_ood))
    return s_id, s_ood


def _sorted_pair(s_id: np.ndarray, s_ood: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row blocks of ID [b, N] and OOD [b, M] scores -> (sorted ID, sorted OOD, [b, N + M] merge positions).

    ``pos[:, j]`` (j < M) is where the j-th sorted OOD score lands in the stable merge of the two sorted rows
    with OOD first among equal values, ``pos[:, M + i]`` where the i-th sorted ID score lands. So
    ``pos[:, j] - j = #(ID < ood_j)`` and ``pos[:, M + i] - i = #(OOD <= id_i)``.
    """
    a = np.sort(s_id, axis=1)
    o = np.sort(s_ood, axis=1)
    # Timsort finds the two sorted runs and merges them in linear time.
    order = np.argsort(np.concatenate([o, a], axis=1), axis=1, kind="stable")
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.broadcast_to(np.arange(order.shape[1]), order.shape), axis=1)
    return a, o, pos


def _stable_argsort_rows(x: np.ndarray) -> np.ndarray:
    """``np.argsort(x, axis=1, kind="stable")`` for [b, n] x, about 3x faster on SIMD builds.

    A (SIMD) quicksort argsort orders the values; ties are then put in index order by sorting the int64 keys
    ``group_start * n + index``, which only permutes within tie groups.
    """
    _b, n = x.shape
    order = np.argsort(x, axis=1)
    start = _group_start(np.take_along_axis(x, order, axis=1))
    return np.sort(start * n + order, axis=1) - start * n


def _group_start(xs: np.ndarray) -> np.ndarray:
    """[b, n] row-sorted values -> [b, n] index of the first element equal to each one (its tie group)."""
    b, n = xs.shape
    flat = np.arange(b * n).reshape(b, n)
    # Compared with !=, not np.diff, so a run of inf stays one group (as the scalar functions). A 1-D
    # accumulate over the flattened rows is much faster than one along axis 1; each row's first element
    # is a group start, so no group leaks across rows.
    start = flat * np.c_[np.ones((b, 1), dtype=bool), xs[:, 1:] != xs[:, :-1]]
    return np.maximum.accumulate(start.ravel()).reshape(b, n) - flat[:, :1]


def _group_end(xs: np.ndarray) -> np.ndarray:
    """[b, n] row-sorted values -> [b, n] index of the last element equal to each one (its tie group)."""
    b, n = xs.shape
    flat = np.arange(b * n).reshape(b, n)
    end = np.where(np.c_[xs[:, :-1] != xs[:, 1:], np.ones((b, 1), dtype=bool)], flat, b * n)
    return np.minimum.accumulate(end.ravel()[::-1])[::-1].reshape(b, n) - flat[:, :1]


# ------------------------------------------------------------------------------------------------- mean


@_accepts_1d(1)
def mean_b(x: ArrayLike) -> np.ndarray:
    """Row means: [b, N] -> [b] float64, equal to ``np.mean`` of each row."""
    a = _rows(x, "x", dtype=None)
    return np.asarray(np.mean(a, axis=1), dtype=np.float64)


# ------------------------------------------------------------------------------------------- calibration


def _bin_stats(
    conf: ArrayLike, correct: ArrayLike, n_bins: int, scheme: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """[b, N] confidences, correctness -> ([b, n_bins] counts, mean conf, accuracy (NaN if empty), N)."""
    _cls._check_bins(n_bins)
    n_bins = int(n_bins)
    c = _rows(conf, "confidences")
    ok = np.asarray(correct)
    if ok.shape != c.shape:
        raise ValueError(f"correct must have shape {c.shape}, got {ok.shape}")
    if not np.all((c >= 0.0) & (c <= 1.0)):
        raise ValueError("confidences must lie in [0, 1]")
    if ok.dtype != np.bool_ and not np.all((ok == 0) | (ok == 1)):
        raise ValueError("correct must be boolean or 0/1")
    ok = ok.astype(np.float64)
    b, n = c.shape
    if scheme == "uniform":
        # Same rule as calibration_bins: half-open [e_k, e_{k+1}) on linspace edges, the last bin closed.
        # searchsorted(edges, c, "right") - 1 is the largest k with edges[k] <= c; floor(c * n_bins) is within
        # one of it (edges[k] is k / n_bins up to an ulp), so one step each way makes it exact, and fast.
        edges = np.r_[np.linspace(0.0, 1.0, n_bins + 1), np.inf]
        index = np.minimum((c * n_bins).astype(np.int64), n_bins)
        index -= edges[index] > c
        index += edges[index + 1] <= c
        np.minimum(index, n_bins - 1, out=index)
    elif scheme == "adaptive":
        # Stable sort, then np.array_split: the first N % n_bins bins hold q + 1 = N // n_bins + 1 examples.
        order = _stable_argsort_rows(c)
        q, r = divmod(n, n_bins)
        pos = np.arange(n)
        big = r * (q + 1)
        pos_bin = np.where(pos < big, pos // (q + 1), r + (pos - big) // max(q, 1))
        index = np.empty((b, n), dtype=np.int64)
        np.put_along_axis(index, order, np.broadcast_to(pos_bin, (b, n)), axis=1)
    else:
        raise ValueError(f"unknown binning scheme {scheme!r}; expected 'uniform' or 'adaptive'")
    # One bincount over all rows with per-row offsets; each bin still sums its members in input order.
    flat = (index + (np.arange(b) * n_bins)[:, None]).ravel()
    size = b * n_bins
    counts = np.bincount(flat, minlength=size).reshape(b, n_bins)
    conf_sum = np.bincount(flat, weights=c.ravel(), minlength=size).reshape(b, n_bins)
    acc_sum = np.bincount(flat, weights=ok.ravel(), minlength=size).reshape(b, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts, conf_sum / counts, acc_sum / counts, n


def _calib_blocks(
    conf: ArrayLike, correct: ArrayLike, n_bins: int, scheme: str
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """:func:`_bin_stats` over blocks of rows."""
    c, ok = _rows(conf, "confidences"), np.asarray(correct)
    for sl in _blocks(c.shape[0], c.shape[1]):
        yield _bin_stats(c[sl], ok[sl], n_bins, scheme)


def _sum_nonempty(terms: np.ndarray, nonempty: np.ndarray) -> np.ndarray:
    """[b, K] terms, [b, K] mask -> [b] sums of the masked terms, each summed as ``np.sum(row[mask])`` would.

    np.sum's pairwise summation depends on the length of the summed array, so the masked terms are packed to
    the left and rows with the same count are summed together: bit-identical to the scalar ECE.
    """
    b, _k = terms.shape
    pack = np.argsort(~nonempty, axis=1, kind="stable")
    packed = np.take_along_axis(terms, pack, axis=1)
    lengths = np.count_nonzero(nonempty, axis=1)
    out = np.zeros(b, dtype=np.float64)
    for m in np.unique(lengths):
        rows = np.nonzero(lengths == m)[0]
        out[rows] = np.sum(packed[rows, :m], axis=1)
    return out


def _ece_from_stats(counts: np.ndarray, conf: np.ndarray, acc: np.ndarray, n: int) -> np.ndarray:
    nonempty = counts > 0
    terms = np.where(nonempty, (counts / n) * np.abs(acc - conf), 0.0)
    return _sum_nonempty(terms, nonempty)


@_accepts_1d(2)
def ece_b(conf: ArrayLike, correct: ArrayLike, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Batched :func:`~evalsuite.metrics.classification.ece`: [b, N], [b, N] -> [b] (exact)."""
    return np.concatenate([_ece_from_stats(*st) for st in _calib_blocks(conf, correct, n_bins, "uniform")])


@_accepts_1d(2)
def ece_adaptive_b(conf: ArrayLike, correct: ArrayLike, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Batched :func:`~evalsuite.metrics.classification.ece_adaptive`: [b, N], [b, N] -> [b] (exact)."""
    return np.concatenate([_ece_from_stats(*st) for st in _calib_blocks(conf, correct, n_bins, "adaptive")])


@_accepts_1d(2)
def mce_b(
    conf: ArrayLike, correct: ArrayLike, n_bins: int = DEFAULT_BINS, scheme: _cls.Scheme = "uniform"
) -> np.ndarray:
    """Batched :func:`~evalsuite.metrics.classification.mce` (max gap over non-empty bins): -> [b] (exact)."""
    return np.concatenate(
        [
            np.max(np.where(counts > 0, np.abs(am - cm), -np.inf), axis=1)
            for counts, cm, am, _ in _calib_blocks(conf, correct, n_bins, scheme)
        ]
    )


# --------------------------------------------------------------------------------------------------- OOD


@_accepts_1d(2)
def auroc_b(scores_id: ArrayLike, scores_ood: ArrayLike) -> np.ndarray:
    """Batched :func:`~evalsuite.metrics.ood.auroc`: [b, N_id], [b, N_ood] -> [b] (bit-identical).

    U = sum over OOD scores s of #(ID < s) + 1/2 #(ID == s), counted exactly in integers: #(ID < s) from the
    merge positions, #(ID == s) from the tie group of sorted ID that starts there (if its value is s).
    """
    s_id, s_ood = _scores(scores_id, scores_ood)
    n_id, n_ood = s_id.shape[1], s_ood.shape[1]
    out = np.empty(s_id.shape[0], dtype=np.float64)
    j = np.arange(n_ood)
    for sl in _blocks(s_id.shape[0], n_id + n_ood):
        a, o, pos = _sorted_pair(s_id[sl], s_ood[sl])
        lt = pos[:, :n_ood] - j  # #(ID < s_j), in [0, N_id]
        k = np.minimum(lt, n_id - 1)
        flat_k = k + (np.arange(a.shape[0]) * n_id)[:, None]
        tied = (lt < n_id) & (a.ravel()[flat_k] == o)
        eq = tied * (_group_end(a).ravel()[flat_k] - k + 1)
        twice_u = 2 * np.sum(lt, axis=1) + np.sum(eq, axis=1)
        # As the scalar: u = (sum of OOD midranks) - M(M+1)/2, exact in float64 (half-integers < 2**52).
        out[sl] = (twice_u / 2.0) / (n_id * n_ood)
    return out


def _mean_precision(tp: np.ndarray, others: np.ndarray) -> np.ndarray:
    """[b, P] positives' tp and other-class counts at their thresholds -> [b] mean of tp / (tp + others)."""
    tp = tp.astype(np.float64)
    return np.sum(tp / (tp + others), axis=1) / tp.shape[1]


@_accepts_1d(2)
def aupr_out_b(scores_id: ArrayLike, scores_ood: ArrayLike) -> np.ndarray:
    """Batched :func:`~evalsuite.metrics.ood.aupr_out` (OOD positive, average precision): -> [b].

    Equal to the scalar within a few ulps (another summation order): the precision at the threshold s_j of
    each OOD score is #(OOD >= s_j) / #(all >= s_j), averaged over the OOD scores.
    """
    s_id, s_ood = _scores(scores_id, scores_ood)
    n_id, n_ood = s_id.shape[1], s_ood.shape[1]
    out = np.empty(s_id.shape[0], dtype=np.float64)
    j = np.arange(n_ood)
    for sl in _blocks(s_id.shape[0], n_id + n_ood):
        _, o, pos = _sorted_pair(s_id[sl], s_ood[sl])
        id_ge = n_id - (pos[:, :n_ood] - j)  # N_id - #(ID < s_j)
        out[sl] = _mean_precision(n_ood - _group_start(o), id_ge)
    return out


@_accepts_1d(2)
def aupr_in_b(scores_id: ArrayLike, scores_ood: ArrayLike) -> np.ndarray:
    """Batched :func:`~evalsuite.metrics.ood.aupr_in` (ID positive, scores negated): -> [b].

    Equal to the scalar within a few ulps (another summation order): the precision at the threshold s_i of
    each ID score is #(ID <= s_i) / #(all <= s_i), averaged over the ID scores.
    """
    s_id, s_ood = _scores(scores_id, scores_ood)
    n_id, n_ood = s_id.shape[1], s_ood.shape[1]
    out = np.empty(s_id.shape[0], dtype=np.float64)
    i = np.arange(n_id)
    for sl in _blocks(s_id.shape[0], n_id + n_ood):
        a, _, pos = _sorted_pair(s_id[sl], s_ood[sl])
        ood_le = pos[:, n_ood:] - i  # OOD come first among ties, so all OOD <= s_i precede it
        out[sl] = _mean_precision(_group_end(a) + 1, ood_le)
    return out


@_accepts_1d(2)
def fpr_at_tpr_b(scores_id: ArrayLike, scores_ood: ArrayLike, tpr: float = 0.95) -> np.ndarray:
    """Batched :func:`~evalsuite.metrics.ood.fpr_at_tpr`: [b, N_id], [b, N_ood] -> [b] (bit-identical)."""
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must lie in (0, 1], got {tpr}")
    s_id, s_ood = _scores(scores_id, scores_ood)
    n_id, n_ood = s_id.shape[1], s_ood.shape[1]
    # Same k as the scalar, including its guard against float products such as 0.07 * 100 = 7.000000000000001.
    k = max(1, math.ceil(tpr * n_id))
    if k > 1 and (k - 1) / n_id >= tpr:
        k -= 1
    out = np.empty(s_id.shape[0], dtype=np.float64)
    for sl in _blocks(s_id.shape[0], n_id + n_ood):
        t = np.partition(s_id[sl], k - 1, axis=1)[:, k - 1]
        out[sl] = np.count_nonzero(s_ood[sl] <= t[:, None], axis=1) / n_ood
    return out


@_accepts_1d(2)
def fpr95_b(scores_id: ArrayLike, scores_ood: ArrayLike) -> np.ndarray:
    """Batched :func:`~evalsuite.metrics.ood.fpr95`: :func:`fpr_at_tpr_b` at 95% of ID accepted."""
    return fpr_at_tpr_b(scores_id, scores_ood, 0.95)


@_accepts_1d(2)
def fpr_at_ood_tpr_b(scores_id: ArrayLike, scores_ood: ArrayLike, tpr: float = 0.95) -> np.ndarray:
    """Batched :func:`~evalsuite.metrics.ood.fpr_at_ood_tpr` (OOD-positive convention): -> [b] (exact)."""
    s_id, s_ood = _scores(scores_id, scores_ood)
    return fpr_at_tpr_b(-s_ood, -s_id, tpr)


@_accepts_1d(2)
def fpr95_ood_b(scores_id: ArrayLike, scores_ood: ArrayLike) -> np.ndarray:
    """Batched :func:`~evalsuite.metrics.ood.fpr95_ood`: ID flagged at 95% of OOD detected -> [b]."""
    return fpr_at_ood_tpr_b(scores_id, scores_ood, 0.95)


# ---------------------------------------------------------------------------------------------- registry

BATCHED: dict[str, Callable[..., np.ndarray]] = {
    "mean": mean_b,
    "ece": ece_b,
    "ece_adaptive": ece_adaptive_b,
    "mce": mce_b,
    "auroc": auroc_b,
    "aupr_in": aupr_in_b,
    "aupr_out": aupr_out_b,
    "fpr95": fpr95_b,
    "fpr_at_tpr": fpr_at_tpr_b,
    "fpr95_ood": fpr95_ood_b,
    "fpr_at_ood_tpr": fpr_at_ood_tpr_b,
}

# The scalar function objects themselves, matched by identity before any name lookup.
_BY_FUNCTION: dict[Callable[..., object], Callable[..., np.ndarray]] = {
    np.mean: mean_b,
    _cls.ece: ece_b,
    _cls.ece_adaptive: ece_adaptive_b,
    _cls.mce: mce_b,
    _ood.auroc: auroc_b,
    _ood.aupr_in: aupr_in_b,
    _ood.aupr_out: aupr_out_b,
    _ood.fpr95: fpr95_b,
    _ood.fpr_at_tpr: fpr_at_tpr_b,
    _ood.fpr95_ood: fpr95_ood_b,
    _ood.fpr_at_ood_tpr: fpr_at_ood_tpr_b,
}


def batched_for(fn: Callable[..., object]) -> Callable[..., np.ndarray] | None:
    """The batched twin of a scalar metric, or None when there is none.

    Matches the scalar functions of :mod:`evalsuite.metrics` (and ``np.mean``) by identity, then by
    ``__name__`` with leading underscores stripped (so a local ``_mean`` maps to :func:`mean_b`);
    a ``functools.partial`` keeps its bound arguments (e.g. ``partial(ece, n_bins=10)``). Lambdas -> None.
    """
    if isinstance(fn, functools.partial):
        inner = batched_for(fn.func)
        return None if inner is None else functools.partial(inner, *fn.args, **fn.keywords)
    try:
        hit = _BY_FUNCTION.get(fn)
    except TypeError:  # unhashable callables
        hit = None
    if hit is not None:
        return hit
    name = getattr(fn, "__name__", None)
    return BATCHED.get(name.lstrip("_")) if isinstance(name, str) else None


__all__ = [
    "BATCHED",
    "aupr_in_b",
    "aupr_out_b",
    "auroc_b",
    "batched_for",
    "ece_adaptive_b",
    "ece_b",
    "fpr95_b",
    "fpr95_ood_b",
    "fpr_at_ood_tpr_b",
    "fpr_at_tpr_b",
    "mce_b",
    "mean_b",
]
