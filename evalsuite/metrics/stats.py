"""Uncertainty and paired tests for comparing a model B with a reference model A: numpy + scipy only.

Every function is pure and works in float64. Shapes: ``N`` examples (ID test set), ``N_id``/``N_ood`` for
the two sides of an OOD metric, ``B`` bootstrap replicates. Conventions (see :data:`CONVENTIONS`):

- deltas are always ``B - A`` (B the candidate, A the reference, e.g. the dense twin);
- bootstrap intervals are percentile intervals (``np.quantile``, linear interpolation) of ``n_boot``
  replicates drawn from ``np.random.default_rng(seed)``; a replicate that is NaN makes the interval NaN
  rather than being silently dropped;
- paired bootstrap p-values are the bootstrap z-test: 2 * sf(|delta| / sd(d*)); the percentile p (inverting
  the interval, +1 correction) is reported beside it as ``p_value_percentile``;
- a difference is significant when ``p < alpha`` (strict, so a discrete bootstrap p equal to alpha is not).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from evalsuite.metrics._lazy import scipy_stats as _st
from evalsuite.metrics.ood import auroc

StatFn = Callable[..., Any]

CONVENTIONS: dict[str, str] = {
    "delta": "stat(B) - stat(A); A is the reference (dense twin), B the candidate",
    "wilson_ci": "Wilson score interval, z = norm.ppf(1 - (1 - level) / 2), clipped to [0, 1]; n = 0 -> NaN",
    "bootstrap": (
        "nonparametric bootstrap over examples, indices drawn with replacement by "
        "np.random.default_rng(seed).integers in chunks of at most 2**22 indices (the stream depends only "
        "on seed, n_boot and the sample sizes); the same indices go to every array of a sample and, in "
        "paired tests, to A and B; two-sample forms resample ID and OOD independently (ID drawn first in "
        "each chunk)"
    ),
    "bootstrap_ci": "percentile: np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2]), linear",
    "bootstrap_p": "two-sided bootstrap z-test: p = 2 * norm.sf(|delta| / std(d*, ddof=1)); sd 0 -> 1 or 0",
    "bootstrap_p_percentile": (
        "two-sided, from the bootstrap distribution d* of the delta: "
        "p = min(1, 2 * min((#{d* <= 0} + 1) / (n_boot + 1), (#{d* >= 0} + 1) / (n_boot + 1))); "
        "p < alpha about when the percentile CI at level 1 - alpha excludes 0; identical inputs give p = 1"
    ),
    "mcnemar": (
        "exact two-sided binomial test on discordant pairs: b01 = #(A wrong, B right), "
        "b10 = #(A right, B wrong), p = min(1, 2 * binom.cdf(min(b01, b10), b01 + b10, 0.5)); no discordant "
        "pairs -> p = 1"
    ),
    "delong": (
        "DeLong et al. (1988) covariance of two correlated AUROCs on the same ID/OOD examples, fast midrank "
        "algorithm (Sun & Xu 2014), structural-component covariances with ddof=1; OOD positive, ties 1/2; "
        "z = delta / se, normal two-sided p and normal CI delta +- z_level * se"
    ),
    "holm": "Holm-Bonferroni step-down adjusted p-values, monotone, capped at 1; NaNs kept and not counted",
    "verdict": "'better'/'worse' when p_adjusted < alpha (direction from higher_is_better), else "
    "'no significant difference'; 'n/a' when delta or p is NaN",
    "seed_level": (
        "mean and sample std (ddof=1) per side; paired t-test (scipy ttest_rel(b, a)) when paired and the "
        "lengths match, else Welch's t-test (ttest_ind(b, a, equal_var=False)); fewer than 2 values on a "
        "side -> p NaN; zero spread (within 1e-12 of the scale) of the paired differences or of both sides "
        "-> p = 1 if the means agree, else NaN (degenerate, named in 'test')"
    ),
}

# Bootstrap indices are drawn and held at most this many at a time (int64: 32 MiB), whatever n_boot is.
_MAX_INDEX_ELEMENTS = 2**22
# In batched mode the gathered resampled arrays are held at most this many float64 elements at a time.
_MAX_GATHER_ELEMENTS = 2**24


# ----------------------------------------------------------------------------------------------- validation


def _check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    return float(level)


def _check_n_boot(n_boot: int) -> int:
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    return int(n_boot)


def _as_sample(arrays: Sequence[ArrayLike], name: str) -> tuple[list[np.ndarray], int]:
    """A sequence of arrays sharing their first dimension N > 0 -> (arrays, N)."""
    # A bare array would be iterated row by row and silently resample the wrong thing.
    if isinstance(arrays, np.ndarray) or not isinstance(arrays, Sequence) or isinstance(arrays, str):
        raise TypeError(
            f"{name} must be a sequence of arrays (e.g. [x] or (logits, labels)), got {type(arrays)}"
        )
    if len(arrays) == 0:
        raise ValueError(f"{name} is empty")
    out = [np.asarray(a) for a in arrays]
    n = out[0].shape[0] if out[0].ndim else 0
    for i, a in enumerate(out):
        if a.ndim == 0 or a.shape[0] != n:
            raise ValueError(f"{name}[{i}] must have first dimension {n}, got shape {a.shape}")
    if n == 0:
        raise ValueError(f"{name} has no examples")
    return out, n


# ------------------------------------------------------------------------------------------------ intervals


def _z(level: float) -> float:
    return float(_st.norm.ppf(0.5 + _check_level(level) / 2.0))


def wilson_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / n``; ``n = 0`` gives (nan, nan)."""
    if int(successes) != successes or int(n) != n or n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need integers 0 <= successes <= n, got successes={successes!r}, n={n!r}")
    z = _z(level)
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    z2n = z * z / n
    center = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    # At 0 or n successes the bound is exactly 0 or 1; rounding in center +- half would miss it by an ulp.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return low, high


def _percentile_ci(reps: np.ndarray, level: float) -> tuple[float, float]:
    if np.isnan(reps).any():
        return math.nan, math.nan
    lo, hi = np.quantile(reps, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def _index_chunks(rng: np.random.Generator, sizes: Sequence[int], n_boot: int) -> Iterator[list[np.ndarray]]:
    """Yield, per chunk of replicates, one [B_chunk, n_g] index array per sample size n_g."""
    per_rep = sum(sizes)
    chunk = max(1, min(n_boot, _MAX_INDEX_ELEMENTS // per_rep))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        yield [rng.integers(0, n, size=(b, n)) for n in sizes]
        done += b


def _replicates(
    stat_fns: Sequence[StatFn],
    samples: Sequence[Sequence[Sequence[np.ndarray]]],
    sizes: Sequence[int],
    n_boot: int,
    seed: int,
    batched: bool,
) -> np.ndarray:
    """[len(stat_fns), n_boot] bootstrap replicates.

    ``samples[k][g]`` are the arrays of output ``k`` belonging to resampling group ``g`` (e.g. ID, OOD);
    group ``g`` has ``sizes[g]`` examples and its indices are shared by every output (the pairing).
    ``stat_fns[k]`` is called on the resampled arrays of all groups of output ``k``, in order.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((len(stat_fns), n_boot), dtype=np.float64)
    # Elements gathered per replicate, to bound the batched gather (the largest output dominates).
    row = max(sum(a.size for group in sample for a in group) for sample in samples)
    sub = max(1, _MAX_GATHER_ELEMENTS // max(row, 1))
    pos = 0
    for idx in _index_chunks(rng, sizes, n_boot):
        b = idx[0].shape[0]
        if batched:
            for s in range(0, b, sub):
                sl = slice(s, min(s + sub, b))
                for k, (fn, sample) in enumerate(zip(stat_fns, samples)):
                    args = [a[ix[sl]] for group, ix in zip(sample, idx) for a in group]
                    vals = np.asarray(fn(*args), dtype=np.float64)
                    if vals.shape != (sl.stop - sl.start,):
                        raise ValueError(
                            f"batched stat_fn must return shape [{sl.stop - sl.start}], got {vals.shape}"
                        )
                    out[k, pos + sl.start : pos + sl.stop] = vals
        else:
            for r in range(b):
                for k, (fn, sample) in enumerate(zip(stat_fns, samples)):
                    args = [a[ix[r]] for group, ix in zip(sample, idx) for a in group]
                    out[k, pos + r] = float(fn(*args))
        pos += b
    return out


def bootstrap_ci(
    stat_fn: StatFn,
    arrays: Sequence[ArrayLike],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    batched: bool = False,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``stat_fn(*arrays)`` resampling the N examples shared by ``arrays``.

    ``arrays``: a sequence of arrays with first dimension N (e.g. ``(logits [N, K], labels [N])``); one index
    set per replicate is applied to all of them. ``batched=True``: ``stat_fn`` takes arrays with an extra
    leading replicate axis ([b, N, ...]) and returns [b] values, which avoids a Python loop per replicate.
    """
    level, n_boot = _check_level(level), _check_n_boot(n_boot)
    xs, n = _as_sample(arrays, "arrays")
    reps = _replicates([stat_fn], [[xs]], [n], n_boot, seed, batched)[0]
    return _percentile_ci(reps, level)


def bootstrap_ci_two_sample(
    stat_fn: StatFn,
    id_arrays: Sequence[ArrayLike],
    ood_arrays: Sequence[ArrayLike],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    batched: bool = False,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``stat_fn(*id_arrays, *ood_arrays)`` for OOD metrics.

    ID examples ([N_id] first dimension) and OOD examples ([N_ood]) are resampled independently, keeping
    both sample sizes fixed, e.g. ``bootstrap_ci_two_sample(auroc, [scores_id], [scores_ood])``.
    """
    level, n_boot = _check_level(level), _check_n_boot(n_boot)
    xi, ni = _as_sample(id_arrays, "id_arrays")
    xo, no = _as_sample(ood_arrays, "ood_arrays")
    reps = _replicates([stat_fn], [[xi, xo]], [ni, no], n_boot, seed, batched)[0]
    return _percentile_ci(reps, level)


# ------------------------------------------------------------------------------------------- paired tests


def _bootstrap_p(deltas: np.ndarray) -> float:
    if np.isnan(deltas).any():
        return math.nan
    n_boot = deltas.shape[0]
    # The +1 counts the observed data as one more replicate, so p >= 2 / (n_boot + 1), never 0.
    below = (np.count_nonzero(deltas <= 0.0) + 1) / (n_boot + 1)
    above = (np.count_nonzero(deltas >= 0.0) + 1) / (n_boot + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def _bootstrap_normal_p(delta: float, deltas: np.ndarray) -> float:
    """Two-sided p of the bootstrap z-test: z = delta / sd(d*) (Efron & Tibshirani 1993, ch. 16).

    Unlike the percentile p, it has no floor of 2 / (n_boot + 1); with Holm over ~50 metrics that floor
    alone would make every bootstrap-tested difference "not significant" at 1000 replicates.
    """
    if not np.all(np.isfinite(deltas)) or not math.isfinite(delta):
        return float("nan")
    sd = float(np.std(deltas, ddof=1)) if deltas.shape[0] > 1 else 0.0
    if sd == 0.0:
        return 1.0 if delta == 0 else 0.0
    return float(2.0 * _st.norm.sf(abs(delta) / sd))


def _paired_result(stat_a: float, stat_b: float, reps: np.ndarray, level: float) -> dict[str, float]:
    deltas = reps[1] - reps[0]
    lo, hi = _percentile_ci(deltas, level)
    return {
        "delta": stat_b - stat_a,
        "ci_low": lo,
        "ci_high": hi,
        "p_value": _bootstrap_normal_p(stat_b - stat_a, deltas),
        "p_value_percentile": _bootstrap_p(deltas),
        "stat_a": stat_a,
        "stat_b": stat_b,
        "n_boot": int(deltas.shape[0]),
    }


def mcnemar_exact(correct_a: ArrayLike, correct_b: ArrayLike) -> dict[str, float]:
    """Exact two-sided McNemar test on [N] correctness flags of A and B on the same examples.

    Returns ``p_value``, ``b01`` = #(A wrong, B right) and ``b10`` = #(A right, B wrong), and ``n``.
    """
    a, b = np.asarray(correct_a), np.asarray(correct_b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b must be [N] of equal length, got {a.shape}, {b.shape}")
    for name, x in (("correct_a", a), ("correct_b", b)):
        if x.dtype != np.bool_ and not np.all((x == 0) | (x == 1)):
            raise ValueError(f"{name} must be boolean or 0/1")
    a, b = a.astype(bool), b.astype(bool)
    b01 = int(np.count_nonzero(~a & b))
    b10 = int(np.count_nonzero(a & ~b))
    m = b01 + b10
    p = 1.0 if m == 0 else min(1.0, 2.0 * float(_st.binom.cdf(min(b01, b10), m, 0.5)))
    return {"p_value": p, "b01": b01, "b10": b10, "n": int(a.shape[0])}


def paired_bootstrap(
    stat_fn: StatFn,
    arrays_a: Sequence[ArrayLike],
    arrays_b: Sequence[ArrayLike],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    batched: bool = False,
) -> dict[str, float]:
    """Paired bootstrap of ``delta = stat_fn(*arrays_b) - stat_fn(*arrays_a)`` on the same N examples.

    Every array of A and B has first dimension N; each replicate applies one index set to all of them.
    Returns ``delta`` (full data), percentile ``ci_low``/``ci_high`` of the delta, the two-sided bootstrap
    ``p_value`` (see :data:`CONVENTIONS`), plus ``stat_a``, ``stat_b`` and ``n_boot``.
    """
    level, n_boot = _check_level(level), _check_n_boot(n_boot)
    xa, na = _as_sample(arrays_a, "arrays_a")
    xb, nb = _as_sample(arrays_b, "arrays_b")
    if na != nb:
        raise ValueError(f"A and B must be evaluated on the same examples, got N = {na} and {nb}")
    stat_a, stat_b = float(stat_fn(*xa)), float(stat_fn(*xb))
    reps = _replicates([stat_fn, stat_fn], [[xa], [xb]], [na], n_boot, seed, batched)
    return _paired_result(stat_a, stat_b, reps, level)


def paired_bootstrap_two_sample(
    stat_fn: StatFn,
    id_a: Sequence[ArrayLike],
    ood_a: Sequence[ArrayLike],
    id_b: Sequence[ArrayLike],
    ood_b: Sequence[ArrayLike],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    batched: bool = False,
) -> dict[str, float]:
    """Paired bootstrap of ``stat_fn(*id_b, *ood_b) - stat_fn(*id_a, *ood_a)`` for OOD metrics.

    ID indices ([N_id]) are shared by A and B, OOD indices ([N_ood]) likewise, and the two are drawn
    independently. Same outputs as :func:`paired_bootstrap`.
    """
    level, n_boot = _check_level(level), _check_n_boot(n_boot)
    xia, nia = _as_sample(id_a, "id_a")
    xoa, noa = _as_sample(ood_a, "ood_a")
    xib, nib = _as_sample(id_b, "id_b")
    xob, nob = _as_sample(ood_b, "ood_b")
    if (nia, noa) != (nib, nob):
        raise ValueError(f"A and B must share examples, got (N_id, N_ood) = {(nia, noa)} and {(nib, nob)}")
    stat_a, stat_b = float(stat_fn(*xia, *xoa)), float(stat_fn(*xib, *xob))
    reps = _replicates([stat_fn, stat_fn], [[xia, xoa], [xib, xob]], [nia, noa], n_boot, seed, batched)
    return _paired_result(stat_a, stat_b, reps, level)


# ----------------------------------------------------------------------------------------------- DeLong


def _as_score_pair(a: ArrayLike, b: ArrayLike, name: str) -> np.ndarray:
    """[2, N] float64 scores of A and B on the same N >= 2 examples."""
    x = np.stack([np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)])
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"{name} of A and B must be [N] of equal length with N >= 2, got {x.shape}")
    if np.isnan(x).any():
        raise ValueError(f"{name} contains NaN")
    return x


def delong_test(
    scores_id_a: ArrayLike,
    scores_ood_a: ArrayLike,
    scores_id_b: ArrayLike,
    scores_ood_b: ArrayLike,
    level: float = 0.95,
) -> dict[str, float]:
    """DeLong test of AUROC(B) - AUROC(A) for two score functions on the same [N_id] ID / [N_ood] OOD sets.

    OOD is positive and a higher score means more OOD (as :func:`evalsuite.metrics.auroc`, whose values
    ``auc_a``/``auc_b`` are); ties count 1/2. Returns ``auc_a``, ``auc_b``, ``delta``, ``se``, ``z``,
    two-sided normal ``p_value`` and the normal ``ci_low``/``ci_high`` at ``level``. Needs N_id, N_ood >= 2.
    """
    z_level = _z(level)
    neg = _as_score_pair(scores_id_a, scores_id_b, "ID scores")
    pos = _as_score_pair(scores_ood_a, scores_ood_b, "OOD scores")
    m, n = pos.shape[1], neg.shape[1]
    # Fast DeLong (Sun & Xu 2014): midranks within the positives, the negatives and the pooled set give
    # every structural component in O((m + n) log(m + n)); midranks are what make ties count 1/2.
    tx = _st.rankdata(pos, axis=1)
    ty = _st.rankdata(neg, axis=1)
    tz = _st.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    v_pos = (tz[:, :m] - tx) / n  # [2, m] P(score_ood_i beats a random ID score)
    v_neg = 1.0 - (tz[:, m:] - ty) / m  # [2, n] P(a random OOD score beats score_id_j)
    cov = np.cov(v_pos) / m + np.cov(v_neg) / n  # ddof=1, as DeLong et al. (1988)
    auc_a = auroc(neg[0], pos[0])
    auc_b = auroc(neg[1], pos[1])
    delta = auc_b - auc_a
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    # Rounding can leave a tiny negative variance when the two AUCs are (almost) perfectly correlated.
    se = math.sqrt(max(var, 0.0))
    if se > 0.0:
        z = delta / se
        p = float(2.0 * _st.norm.sf(abs(z)))
    else:
        # Zero variance: the components of A and B differ by a constant, so any nonzero delta is certain.
        z = 0.0 if delta == 0.0 else math.copysign(math.inf, delta)
        p = 1.0 if delta == 0.0 else 0.0
    return {
        "auc_a": auc_a,
        "auc_b": auc_b,
        "delta": delta,
        "se": se,
        "z": z,
        "p_value": p,
        "ci_low": delta - z_level * se,
        "ci_high": delta + z_level * se,
    }


# --------------------------------------------------------------------------------- multiplicity, verdict


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, same order as the input; NaNs stay NaN and are not counted."""
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    valid = ~np.isnan(p)
    if np.any((p[valid] < 0.0) | (p[valid] > 1.0)):
        raise ValueError("p-values must lie in [0, 1] (or be NaN)")
    out = p.copy()
    pv = p[valid]
    m = pv.shape[0]
    if m:
        order = np.argsort(pv, kind="stable")
        # Step-down: the i-th smallest (0-based) is scaled by m - i, then made monotone by a running max.
        adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * pv[order]))
        res = np.empty(m)
        res[order] = adj
        out[valid] = res
    return [float(v) for v in out]


def verdict(delta: float, p_adjusted: float, higher_is_better: bool, alpha: float = 0.05) -> str:
    """'better' / 'worse' (B vs A, given the metric direction) when ``p_adjusted < alpha``, else
    'no significant difference'; 'n/a' when ``delta`` or ``p_adjusted`` is NaN (or None)."""
    if delta is None or p_adjusted is None or math.isnan(delta) or math.isnan(p_adjusted):
        return "n/a"
    if not p_adjusted < alpha or delta == 0.0:
        return "no significant difference"
    return "better" if (delta > 0.0) == bool(higher_is_better) else "worse"


# ------------------------------------------------------------------------------------------- seed level


def seed_level_test(values_a: Sequence[float], values_b: Sequence[float], paired: bool) -> dict[str, Any]:
    """t-test of a metric across training seeds: [S_a] values of A vs [S_b] values of B.

    Paired t-test (seed i of A matched with seed i of B) when ``paired`` and S_a == S_b, else Welch's.
    Returns ``mean_a``, ``std_a``, ``mean_b``, ``std_b`` (sample std, ddof=1), ``delta`` = mean_b - mean_a,
    ``p_value`` (NaN with fewer than 2 values on a side, and for zero spread unless the means agree, then 1),
    ``test`` naming what was run, ``n_a``, ``n_b``.
    """
    a = np.asarray(values_a, dtype=np.float64).reshape(-1)
    b = np.asarray(values_b, dtype=np.float64).reshape(-1)

    def _mean(x: np.ndarray) -> float:
        return float(np.mean(x)) if x.size else math.nan

    def _std(x: np.ndarray) -> float:
        return float(np.std(x, ddof=1)) if x.size >= 2 else math.nan

    res: dict[str, Any] = {
        "mean_a": _mean(a),
        "std_a": _std(a),
        "mean_b": _mean(b),
        "std_b": _std(b),
        "delta": _mean(b) - _mean(a),
        "n_a": int(a.size),
        "n_b": int(b.size),
    }
    if a.size < 2 or b.size < 2:
        res.update(p_value=math.nan, test=f"none: fewer than 2 values per side (n_a={a.size}, n_b={b.size})")
        return res
    use_paired = paired and a.size == b.size
    test = "paired t-test" if use_paired else "welch t-test"
    if paired and not use_paired:
        test += " (paired requested but lengths differ)"
    # Seed-level metrics are often multiples of 1/N, so "constant" differences carry float noise of a few
    # ulps, which scipy turns into t ~ 1e14 and p ~ 1e-29. Spreads within 1e-12 of the scale count as zero:
    # no variance means no t-test (p NaN), unless the means agree too (p = 1).
    tol = 1e-12 * max(1.0, float(np.max(np.abs(np.r_[a, b]))))
    spread = float(np.ptp(b - a)) if use_paired else max(float(np.ptp(a)), float(np.ptp(b)))
    if spread <= tol:
        p = 1.0 if abs(res["delta"]) <= tol else math.nan
        test += " (degenerate: zero variance)"
    elif use_paired:
        p = _st.ttest_rel(b, a).pvalue
    else:
        p = _st.ttest_ind(b, a, equal_var=False).pvalue
    res.update(p_value=float(p), test=test)
    return res


__all__ = [
    "CONVENTIONS",
    "bootstrap_ci",
    "bootstrap_ci_two_sample",
    "delong_test",
    "holm",
    "mcnemar_exact",
    "paired_bootstrap",
    "paired_bootstrap_two_sample",
    "seed_level_test",
    "verdict",
    "wilson_ci",
]
