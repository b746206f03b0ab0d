"""Tests and intervals that hold their error rates: paired permutation tests, McNemar-consistent accuracy
intervals, bias-aware value intervals for the ECE family, Benjamini-Hochberg and non-inferiority.

numpy + scipy only, float64, every function pure and seeded. Deltas are ``B - A`` (A the reference, e.g. the
dense twin). Every (p, CI) pair returned here agrees by construction: the CI at level ``1 - alpha`` excludes
0 exactly when ``p < alpha`` (checked on each call; see :func:`_agree`). See :data:`CONVENTIONS`.

Why these and not :mod:`evalsuite.metrics.stats`'s bootstrap z-test and percentile interval: the z-test
rejects a true null well above alpha for the calibration errors (non-normal, bias-shifted replicates), the
percentile interval of the ECE adds the plug-in's upward bias a second time, and the accuracy delta's
bootstrap CI and McNemar p came from different methods and could disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from evalsuite.metrics import classification as _cls
from evalsuite.metrics import stats as _stats
from evalsuite.metrics._lazy import scipy_stats as _st
from evalsuite.metrics.batched import batched_for

StatFn = Callable[..., Any]
ValueMethod = Literal["basic", "bca", "percentile"]

CONVENTIONS: dict[str, str] = {
    "permutation_test": (
        "paired permutation test of delta = stat(B) - stat(A): each example's A and B outputs are swapped "
        "with probability 1/2 (ID and OOD examples independently), swaps drawn by "
        "np.random.default_rng(seed).random(...) < 0.5; two-sided p = (1 + #{|d*| >= |delta| - tol}) / "
        "(1 + n_perm), tol = 1e-12 * max(|stat_a|, |stat_b|); exact (valid at any n_perm) under "
        "exchangeability of A's and B's outputs per example"
    ),
    "permutation_adaptive": (
        "n_perm starts at n_perm and doubles (the stream continues) while the 99.9% Clopper-Pearson interval "
        "of the permutation p, or the reported p itself, straddles any decision threshold (alpha and the "
        "given thresholds, e.g. Holm's alpha / m), up to max_perm; 'resolved' says whether it stopped decided"
    ),
    "permutation_ci": (
        "inversion of the permutation test over location shifts of the delta with the null distribution "
        "held fixed: CI = {delta0 : p(delta0) >= alpha} = delta +- u_(k), u = |d*| + tol, u_(k) the k-th "
        "largest, k the smallest count with (1 + k) / (1 + n_perm) >= alpha; 0 is outside exactly when "
        "p < alpha"
    ),
    "accuracy_delta": (
        "exact McNemar p (as stats.mcnemar_exact) and its matching interval: the Clopper-Pearson interval of "
        "pi = P(B right | discordant) at level 1 - alpha, mapped to delta = (b01 + b10) / N * (2 pi - 1); "
        "conditional on the number of discordant pairs; 0 is outside exactly when p < alpha"
    ),
    "tango": (
        "Tango (1998) score test and interval for a paired difference of proportions, restricted MLE in "
        "closed form; at delta0 = 0 the statistic is McNemar's (b01 - b10) / sqrt(b01 + b10); the interval "
        "endpoints are found by bisection to 1e-12"
    ),
    "value_ci": (
        "bootstrap interval of a statistic's value, same index stream as stats.bootstrap_ci; 'basic' "
        "(2 * stat - quantiles, removes the plug-in bias the percentile interval doubles), 'bca' (bias z0 "
        "from #{t* < t} + #{t* == t} / 2, acceleration from a delete-group jackknife with at most 200 "
        "groups), 'percentile'; clipped to bounds"
    ),
    "ece_debiased": (
        "Kumar, Liang & Ma (2019) normal-debiased L1 ECE: 2 * plugin - E[sum_b w_b |R_b - conf_b|] with "
        "R_b ~ N(acc_b, acc_b (1 - acc_b) / n_b), the Gaussian expectation in closed form instead of their "
        "1000 resamples; same bins as classification.ece / ece_adaptive"
    ),
    "benjamini_hochberg": (
        "Benjamini-Hochberg step-up adjusted p (statsmodels 'fdr_bh'); NaNs kept and not counted"
    ),
    "noninferiority": (
        "one-sided test at alpha of H0: gain <= -margin, gain = delta if higher_is_better else -delta; "
        "'replaces it' when rejected, 'worse' when the one-sided bound the other way shows gain < -margin, "
        "else 'inconclusive'; smallest_margin = -(one-sided lower bound of the gain): declared for any "
        "margin > smallest_margin. Accuracy: Tango score test; other metrics: basic paired bootstrap"
    ),
}

# Gathered (permuted) arrays are held at most this many float64 elements at a time.
_MAX_GATHER_ELEMENTS = 2**24
# Monte-Carlo risk that the adaptive permutation count stops on the wrong side of a threshold.
_MC_RISK = 1e-3


# ------------------------------------------------------------------------------------------------ helpers


def _check_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return float(alpha)


def _check_count(n: int, name: str) -> int:
    if int(n) != n or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def _as_flags(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or a.shape[0] == 0:
        raise ValueError(f"{name} must have shape [N] with N > 0, got {a.shape}")
    if a.dtype != np.bool_ and not np.all((a == 0) | (a == 1)):
        raise ValueError(f"{name} must be boolean or 0/1")
    return a.astype(bool)


def _flag_pair(correct_a: ArrayLike, correct_b: ArrayLike) -> tuple[int, int, int]:
    """-> (b01 = #(A wrong, B right), b10 = #(A right, B wrong), N)."""
    a, b = _as_flags(correct_a, "correct_a"), _as_flags(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b must have equal length, got {a.shape}, {b.shape}")
    return int(np.count_nonzero(~a & b)), int(np.count_nonzero(a & ~b)), int(a.shape[0])


def _min_count(alpha: float, n: int) -> int:
    """Smallest integer k with (1 + k) / (1 + n) >= alpha, evaluated in float exactly as p is compared."""
    k = max(0, math.ceil(alpha * (n + 1)) - 1)
    while (1 + k) / (1 + n) < alpha:
        k += 1
    while k > 0 and k / (1 + n) >= alpha:
        k -= 1
    return k


def _agree(lo: float, hi: float, p: float, alpha: float) -> tuple[float, float]:
    """Make the CI exclude 0 exactly when p < alpha, moving an endpoint by at most a rounding error.

    Intervals found by inverting the same test agree mathematically; beta quantiles, binomial tails and
    bisection can still land an ulp on the wrong side of 0. A larger disagreement is a bug and raises.
    """
    if math.isnan(p) or math.isnan(lo) or math.isnan(hi):
        return lo, hi
    excludes = lo > 0.0 or hi < 0.0
    if excludes == (p < alpha):
        return lo, hi
    tol = 1e-9
    if p < alpha:  # must exclude 0: move the endpoint nearest 0 just past it
        if abs(lo) <= abs(hi) and abs(lo) <= tol:
            return math.nextafter(0.0, 1.0), hi
        if abs(hi) <= tol:
            return lo, math.nextafter(0.0, -1.0)
    else:  # must contain 0
        if 0.0 < lo <= tol:
            return 0.0, hi
        if -tol <= hi < 0.0:
            return lo, 0.0
    raise AssertionError(f"CI [{lo}, {hi}] and p = {p} disagree at alpha = {alpha}")


# ------------------------------------------------------------------------------------ permutation test


def _resolve_batched(stat_fn: StatFn, batched: bool | None) -> tuple[StatFn, bool]:
    if batched is None:
        fb = batched_for(stat_fn)
        return (fb, True) if fb is not None else (stat_fn, False)
    return stat_fn, bool(batched)


def _swapped_stats(
    fn: StatFn,
    batched: bool,
    groups_a: Sequence[Sequence[np.ndarray]],
    groups_b: Sequence[Sequence[np.ndarray]],
    swaps: Sequence[np.ndarray],
) -> np.ndarray:
    """[b] values of stat(B') - stat(A'), where B' takes A's outputs on swapped examples and vice versa."""
    b = swaps[0].shape[0]
    args_a: list[np.ndarray] = []
    args_b: list[np.ndarray] = []
    for ga, gb, sw in zip(groups_a, groups_b, swaps):
        for xa, xb in zip(ga, gb):
            m = sw.reshape(sw.shape + (1,) * (xa.ndim - 1))
            args_a.append(np.where(m, xb[None], xa[None]))
            args_b.append(np.where(m, xa[None], xb[None]))
    if batched:
        va = np.asarray(fn(*args_a), dtype=np.float64)
        vb = np.asarray(fn(*args_b), dtype=np.float64)
        if va.shape != (b,) or vb.shape != (b,):
            raise ValueError(f"batched stat_fn must return shape [{b}], got {va.shape}")
        return vb - va
    return np.array(
        [float(fn(*(x[r] for x in args_b))) - float(fn(*(x[r] for x in args_a))) for r in range(b)]
    )


def _decided(count: int, n: int, thresholds: Sequence[float]) -> bool:
    """True when the Monte-Carlo p is on a sure side of every threshold (and the reported p agrees)."""
    lo = 0.0 if count == 0 else float(_st.beta.ppf(_MC_RISK / 2, count, n - count + 1))
    hi = 1.0 if count == n else float(_st.beta.ppf(1 - _MC_RISK / 2, count + 1, n - count))
    p = (1 + count) / (1 + n)
    return all((hi < t and p < t) or (lo >= t and p >= t) for t in thresholds)


def _permutation(
    stat_fn: StatFn,
    groups_a: list[list[np.ndarray]],
    groups_b: list[list[np.ndarray]],
    sizes: list[int],
    alpha: float,
    thresholds: Sequence[float] | None,
    n_perm: int,
    max_perm: int,
    seed: int,
    batched: bool | None,
) -> dict[str, Any]:
    alpha = _check_alpha(alpha)
    n_perm, max_perm = _check_count(n_perm, "n_perm"), _check_count(max_perm, "max_perm")
    ts = [alpha, *(thresholds or [])]
    for t in ts:
        _check_alpha(t)
    flat_a = [x for g in groups_a for x in g]
    flat_b = [x for g in groups_b for x in g]
    for xa, xb in zip(flat_a, flat_b):
        if xa.shape != xb.shape:
            raise ValueError(f"A and B arrays must match in shape, got {xa.shape} and {xb.shape}")
    stat_a, stat_b = float(stat_fn(*flat_a)), float(stat_fn(*flat_b))
    delta = stat_b - stat_a
    fn, is_batched = _resolve_batched(stat_fn, batched)
    if not math.isfinite(delta):
        raise ValueError(f"the statistic is not finite on the data (A: {stat_a}, B: {stat_b})")
    tol = 1e-12 * max(abs(stat_a), abs(stat_b))
    per_row = sum(x.size for x in flat_a) * 2
    sub = max(1, _MAX_GATHER_ELEMENTS // max(per_row, 1))
    rng = np.random.default_rng(seed)
    chunks: list[np.ndarray] = []
    done, count, batch = 0, 0, n_perm
    while True:
        batch = min(batch, max_perm - done)
        for s in range(0, batch, sub):
            b = min(sub, batch - s)
            swaps = [rng.random((b, n)) < 0.5 for n in sizes]
            d = _swapped_stats(fn, is_batched, groups_a, groups_b, swaps)
            if not np.all(np.isfinite(d)):
                raise ValueError("the statistic is not finite on a permuted sample")
            u = np.abs(d) + tol
            count += int(np.count_nonzero(u >= abs(delta)))
            chunks.append(u)
        done += batch
        resolved = _decided(count, done, ts)
        if resolved or done >= max_perm:
            break
        batch = done  # doubling: the stream continues where it stopped
    u = np.concatenate(chunks)
    p = (1 + count) / (1 + done)
    k = _min_count(alpha, done)
    if k == 0:
        lo, hi = -math.inf, math.inf
    else:
        half = float(np.partition(u, done - k)[done - k])  # the k-th largest
        lo, hi = delta - half, delta + half
    lo, hi = _agree(lo, hi, p, alpha)
    return {
        "delta": delta,
        "stat_a": stat_a,
        "stat_b": stat_b,
        "p_value": float(p),
        "ci_low": lo,
        "ci_high": hi,
        "level": 1.0 - alpha,
        "n_perm": int(done),
        "resolved": bool(resolved),
        "test": "paired permutation",
    }


def permutation_test(
    stat_fn: StatFn,
    arrays_a: Sequence[ArrayLike],
    arrays_b: Sequence[ArrayLike],
    alpha: float = 0.05,
    thresholds: Sequence[float] | None = None,
    n_perm: int = 2000,
    max_perm: int = 64_000,
    seed: int = 0,
    batched: bool | None = None,
) -> dict[str, Any]:
    """Paired permutation test of ``delta = stat_fn(*arrays_b) - stat_fn(*arrays_a)`` on the same N examples.

    ``arrays_a``/``arrays_b``: the per-example outputs of A and B, each array with first dimension N (e.g.
    ``(conf [N], correct [N])`` for the ECE family, ``[loss [N]]`` with ``np.mean`` for NLL or Brier). Each
    permutation swaps A's and B's outputs on a random half of the examples. ``batched=None`` uses the batched
    twin from :func:`evalsuite.metrics.batched.batched_for` when there is one (else a Python loop);
    ``True`` means ``stat_fn`` itself takes [b, N, ...] and returns [b].

    ``thresholds``: further decision thresholds the p will be compared with (e.g. ``alpha / m`` for Holm over
    m tests); permutations are added until p is on a sure side of each, so the p floor ``1 / (1 + n_perm)``
    never decides a corrected verdict (up to ``max_perm``).

    Returns ``delta``, ``stat_a``, ``stat_b``, ``p_value`` (two-sided), ``ci_low``/``ci_high`` (level
    ``1 - alpha``, excludes 0 exactly when ``p_value < alpha``), ``level``, ``n_perm``, ``resolved``,
    ``test``.
    """
    xa, na = _stats._as_sample(arrays_a, "arrays_a")
    xb, nb = _stats._as_sample(arrays_b, "arrays_b")
    if na != nb or len(xa) != len(xb):
        raise ValueError(f"A and B must give the same arrays on the same examples, got N = {na} and {nb}")
    return _permutation(stat_fn, [xa], [xb], [na], alpha, thresholds, n_perm, max_perm, seed, batched)


def permutation_test_two_sample(
    stat_fn: StatFn,
    id_a: Sequence[ArrayLike],
    ood_a: Sequence[ArrayLike],
    id_b: Sequence[ArrayLike],
    ood_b: Sequence[ArrayLike],
    alpha: float = 0.05,
    thresholds: Sequence[float] | None = None,
    n_perm: int = 2000,
    max_perm: int = 64_000,
    seed: int = 0,
    batched: bool | None = None,
) -> dict[str, Any]:
    """:func:`permutation_test` for OOD metrics ``stat_fn(*id, *ood)``: swaps per ID and per OOD example.

    A's and B's scores must be on a common scale for swapping to mean anything (the same score function, or
    ranks); the rank-based metrics (AUROC, AUPR, FPR@95) are unchanged by one monotone map applied to both
    of a model's sides. Same outputs as :func:`permutation_test`.
    """
    xia, nia = _stats._as_sample(id_a, "id_a")
    xoa, noa = _stats._as_sample(ood_a, "ood_a")
    xib, nib = _stats._as_sample(id_b, "id_b")
    xob, nob = _stats._as_sample(ood_b, "ood_b")
    if (nia, noa) != (nib, nob) or len(xia) != len(xib) or len(xoa) != len(xob):
        raise ValueError(f"A and B must share examples, got (N_id, N_ood) = {(nia, noa)} and {(nib, nob)}")
    return _permutation(
        stat_fn, [xia, xoa], [xib, xob], [nia, noa], alpha, thresholds, n_perm, max_perm, seed, batched
    )


# ------------------------------------------------------------------------------------------- accuracy


def _clopper_pearson(x: int, n: int, alpha: float) -> tuple[float, float]:
    lo = 0.0 if x == 0 else float(_st.beta.ppf(alpha / 2, x, n - x + 1))
    hi = 1.0 if x == n else float(_st.beta.ppf(1 - alpha / 2, x + 1, n - x))
    return lo, hi


def accuracy_delta_test(correct_a: ArrayLike, correct_b: ArrayLike, alpha: float = 0.05) -> dict[str, Any]:
    """Accuracy(B) - accuracy(A) on the same [N] examples: exact McNemar p with its own interval.

    ``p_value`` is :func:`evalsuite.metrics.stats.mcnemar_exact`'s. The interval inverts the same exact
    binomial test on the discordant pairs (Clopper-Pearson for ``pi = P(B right | discordant)``) and maps it
    to ``delta = (b01 + b10) / N * (2 pi - 1)``, conditional on the discordant count; so it excludes 0 exactly
    when ``p_value < alpha``. No discordant pairs: p = 1 and CI [0, 0].
    Returns ``delta``, ``p_value``, ``ci_low``, ``ci_high``, ``level``, ``b01``, ``b10``, ``n``, ``test``.
    """
    alpha = _check_alpha(alpha)
    b01, b10, n = _flag_pair(correct_a, correct_b)
    m = b01 + b10
    p = 1.0 if m == 0 else min(1.0, 2.0 * float(_st.binom.cdf(min(b01, b10), m, 0.5)))
    if m == 0:
        lo, hi = 0.0, 0.0
    else:
        pl, ph = _clopper_pearson(b01, m, alpha)
        lo, hi = m / n * (2.0 * pl - 1.0), m / n * (2.0 * ph - 1.0)
    lo, hi = _agree(lo, hi, p, alpha)
    return {
        "delta": (b01 - b10) / n,
        "p_value": p,
        "ci_low": lo,
        "ci_high": hi,
        "level": 1.0 - alpha,
        "b01": b01,
        "b10": b10,
        "n": n,
        "test": "exact McNemar",
    }


def _tango_z(b01: int, b10: int, n: int, delta0: float) -> float:
    """Tango's score statistic for H0: p01 - p10 = delta0 (positive when B looks better than delta0)."""
    # Restricted MLE of p10 under the null (Tango 1998, eq. 3): the root of a*q^2 + b*q + c in [0, 1].
    a = 2.0 * n
    b = -b01 - b10 + (2.0 * n - b01 + b10) * delta0
    c = -b10 * delta0 * (1.0 - delta0)
    disc = max(b * b - 4.0 * a * c, 0.0)
    q = max((math.sqrt(disc) - b) / (2.0 * a), 0.0)
    var = n * (2.0 * q + delta0 * (1.0 - delta0))
    num = b01 - b10 - n * delta0
    if var <= 0.0:
        return 0.0 if num == 0 else math.copysign(math.inf, num)
    return num / math.sqrt(var)


def _tango_root(b01: int, b10: int, n: int, z: float) -> float:
    """The delta0 in [-1, 1] with T(delta0) = z (T decreases in delta0), by bisection."""
    lo, hi = -1.0, 1.0
    if _tango_z(b01, b10, n, lo) <= z:
        return lo
    if _tango_z(b01, b10, n, hi) >= z:
        return hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _tango_z(b01, b10, n, mid) > z:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def tango_test(
    correct_a: ArrayLike, correct_b: ArrayLike, delta0: float = 0.0, alpha: float = 0.05
) -> dict[str, Any]:
    """Tango (1998) score test and interval for accuracy(B) - accuracy(A) on the same [N] examples.

    Unconditional (unlike :func:`accuracy_delta_test`), so it also tests ``H0: delta = delta0 != 0``.
    Returns ``delta``, ``z`` (at ``delta0``), two-sided ``p_value``, the score interval ``ci_low``/``ci_high``
    at level ``1 - alpha`` (excludes ``delta0`` exactly when ``p_value < alpha``, to the bisection tolerance),
    ``b01``, ``b10``, ``n``. At ``delta0 = 0``, ``z`` is McNemar's uncorrected statistic.
    """
    alpha = _check_alpha(alpha)
    if not -1.0 < delta0 < 1.0:
        raise ValueError(f"delta0 must lie in (-1, 1), got {delta0}")
    b01, b10, n = _flag_pair(correct_a, correct_b)
    z = _tango_z(b01, b10, n, delta0)
    p = float(2.0 * _st.norm.sf(abs(z)))
    zc = float(_st.norm.isf(alpha / 2))
    lo, hi = _tango_root(b01, b10, n, zc), _tango_root(b01, b10, n, -zc)
    lo_s, hi_s = _agree(lo - delta0, hi - delta0, p, alpha)
    return {
        "delta": (b01 - b10) / n,
        "z": z,
        "p_value": p,
        "ci_low": lo_s + delta0,
        "ci_high": hi_s + delta0,
        "level": 1.0 - alpha,
        "b01": b01,
        "b10": b10,
        "n": n,
        "test": "Tango score",
    }


# ----------------------------------------------------------------------------------- value intervals


def _jackknife_acceleration(
    stat_fn: StatFn, xs: list[np.ndarray], n: int, seed: int, max_groups: int = 200
) -> float:
    """BCa acceleration from a delete-group jackknife (delete-1 when N <= max_groups)."""
    g = min(n, max_groups)
    order = np.random.default_rng(seed).permutation(n) if g < n else np.arange(n)
    vals = np.empty(g)
    for i, grp in enumerate(np.array_split(order, g)):
        keep = np.ones(n, dtype=bool)
        keep[grp] = False
        vals[i] = float(stat_fn(*(x[keep] for x in xs)))
    d = vals.mean() - vals
    den = 6.0 * float(np.sum(d * d)) ** 1.5
    return 0.0 if den == 0.0 else float(np.sum(d**3)) / den


def value_ci(
    stat_fn: StatFn,
    arrays: Sequence[ArrayLike],
    method: ValueMethod = "basic",
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    batched: bool | None = None,
    bounds: tuple[float | None, float | None] = (None, None),
) -> dict[str, Any]:
    """Bootstrap interval of the value ``stat_fn(*arrays)``, aware of the plug-in's bias.

    The bootstrap replicates use :func:`evalsuite.metrics.stats.bootstrap_ci`'s index stream. ``basic``:
    ``[2 t - q_hi, 2 t - q_lo]``, centred on the bias-corrected value; ``bca``: bias-corrected and accelerated
    percentiles; ``percentile``: the plain percentile interval (for comparison; it doubles an upward bias such
    as the ECE's). ``bounds`` clips the interval (e.g. ``(0, 1)`` for calibration errors).
    Returns ``estimate``, ``ci_low``, ``ci_high``, ``level``, ``method``, ``bias`` (mean(t*) - t),
    ``bias_corrected`` (2 t - mean(t*)), ``n_boot``.
    """
    level = _stats._check_level(level)
    n_boot = _stats._check_n_boot(n_boot)
    xs, n = _stats._as_sample(arrays, "arrays")
    fn, is_batched = _resolve_batched(stat_fn, batched)
    t = float(stat_fn(*xs))
    reps = _stats._replicates([fn], [[xs]], [n], n_boot, seed, is_batched)[0]
    if not np.all(np.isfinite(reps)) or not math.isfinite(t):
        lo, hi = math.nan, math.nan
    elif method == "percentile":
        lo, hi = (float(v) for v in np.quantile(reps, [(1 - level) / 2, (1 + level) / 2]))
    elif method == "basic":
        q_lo, q_hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
        lo, hi = 2.0 * t - float(q_hi), 2.0 * t - float(q_lo)
    elif method == "bca":
        # Ties count one half, so a statistic whose replicates often equal t (discrete data) is not pushed.
        frac = (np.count_nonzero(reps < t) + 0.5 * np.count_nonzero(reps == t)) / n_boot
        frac = min(max(frac, 0.5 / n_boot), 1.0 - 0.5 / n_boot)
        z0 = float(_st.norm.ppf(frac))
        a = _jackknife_acceleration(stat_fn, xs, n, seed)
        zs = _st.norm.ppf([(1 - level) / 2, (1 + level) / 2])
        adj = _st.norm.cdf(z0 + (z0 + zs) / (1.0 - a * (z0 + zs)))
        lo, hi = (float(v) for v in np.quantile(reps, adj))
    else:
        raise ValueError(f"unknown method {method!r}; expected 'basic', 'bca' or 'percentile'")
    low_b, high_b = bounds
    if low_b is not None:
        lo, hi = max(lo, low_b), max(hi, low_b)
    if high_b is not None:
        lo, hi = min(lo, high_b), min(hi, high_b)
    mean_rep = float(np.mean(reps))
    return {
        "estimate": t,
        "ci_low": lo,
        "ci_high": hi,
        "level": level,
        "method": method,
        "bias": mean_rep - t,
        "bias_corrected": 2.0 * t - mean_rep,
        "n_boot": n_boot,
    }


def ece_debiased(
    confidences: ArrayLike,
    correct: ArrayLike,
    n_bins: int = _cls.DEFAULT_BINS,
    scheme: _cls.Scheme = "uniform",
) -> float:
    """Debiased L1 ECE (Kumar, Liang & Ma 2019, "normal debiasing"): [N], [N] -> float.

    ``2 * plugin - sum_b w_b E|R_b - conf_b|`` with ``R_b ~ N(acc_b, acc_b (1 - acc_b) / n_b)``: the plug-in
    ECE minus its estimated upward bias. The expectation is in closed form,
    ``E|mu + s Z| = s sqrt(2/pi) exp(-mu^2 / 2 s^2) + mu (1 - 2 Phi(-mu / s))``. Same bins as
    :func:`~evalsuite.metrics.classification.ece` (``uniform``) or ``ece_adaptive``; may be negative when
    the model is close to calibrated (the bias estimate exceeds the plug-in), which is left as is.
    """
    bins = _cls.calibration_bins(confidences, correct, n_bins, scheme)
    keep = bins.counts > 0
    w = bins.counts[keep] / bins.n
    acc, conf, cnt = bins.accuracy[keep], bins.confidence[keep], bins.counts[keep]
    mu = acc - conf
    s = np.sqrt(acc * (1.0 - acc) / cnt)
    with np.errstate(divide="ignore", invalid="ignore"):
        folded = np.where(
            s > 0.0,
            s * math.sqrt(2.0 / math.pi) * np.exp(-0.5 * (mu / s) ** 2)
            + mu * (1.0 - 2.0 * _st.norm.cdf(-mu / s)),
            np.abs(mu),
        )
    plugin = float(np.sum(w * np.abs(mu)))
    return 2.0 * plugin - float(np.sum(w * folded))


def _bin_index(c: np.ndarray, ok: np.ndarray, n_bins: int, scheme: str) -> np.ndarray:
    """[N] bin of each example, the rule of classification.calibration_bins (uniform or adaptive)."""
    if scheme == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        return np.minimum(np.searchsorted(edges, c, side="right") - 1, n_bins - 1)
    if scheme == "adaptive":
        index = np.empty(c.shape[0], dtype=np.int64)
        for b, members in enumerate(np.array_split(np.argsort(c, kind="stable"), n_bins)):
            index[members] = b
        return index
    raise ValueError(f"unknown binning scheme {scheme!r}; expected 'uniform' or 'adaptive'")


def calibration_error_ci(
    confidences: ArrayLike,
    correct: ArrayLike,
    kind: Literal["ece", "mce"] = "ece",
    n_bins: int = _cls.DEFAULT_BINS,
    scheme: _cls.Scheme = "uniform",
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Interval for the population ECE (or MCE) that keeps its coverage from calibrated to badly calibrated.

    ECE = sum_b |m_b| with m_b = E[1{bin b} (correct - conf)], a vector of means. Whatever the true m, the
    triangle inequality gives |ECE_hat - ECE| <= sum_b |m_hat_b - m_b| =: E, and E's distribution does not
    depend on how calibrated the model is (no plug-in bias, no boundary at 0), so
    ``[ECE_hat - q, ECE_hat + q]`` with ``q`` the ``level`` quantile of the bootstrap E* =
    sum_b |m*_b - m_hat_b| covers at least ``level`` (asymptotically; conservative where gaps are large). MCE:
    the same with the per-bin gaps and a max. Bins are those of the full sample (for ``adaptive``, the target
    is then the calibration error over these fixed bins). Clipped to [0, 1].
    Returns ``estimate`` (plug-in, equal to ``ece``/``mce``), ``debiased`` (:func:`ece_debiased`, ECE only),
    ``ci_low``, ``ci_high``, ``level``, ``half_width`` (q), ``n_boot``, ``method``.
    """
    level = _stats._check_level(level)
    n_boot = _stats._check_n_boot(n_boot)
    _cls._check_bins(n_bins)
    n_bins = int(n_bins)
    c, ok = _cls._as_conf_correct(confidences, correct)
    if kind not in ("ece", "mce"):
        raise ValueError(f"unknown kind {kind!r}; expected 'ece' or 'mce'")
    n = c.shape[0]
    index = _bin_index(c, ok, n_bins, scheme)
    resid = ok - c
    counts = np.bincount(index, minlength=n_bins)
    sums = np.bincount(index, weights=resid, minlength=n_bins)
    nonempty = counts > 0
    rng = np.random.default_rng(seed)
    dev = np.empty(n_boot)
    chunk = max(1, _MAX_GATHER_ELEMENTS // (4 * n))
    for s in range(0, n_boot, chunk):
        b = min(chunk, n_boot - s)
        ix = rng.integers(0, n, size=(b, n))
        flat = (index[ix] + (np.arange(b) * n_bins)[:, None]).ravel()
        cnt = np.bincount(flat, minlength=b * n_bins).reshape(b, n_bins)
        sm = np.bincount(flat, weights=resid[ix].ravel(), minlength=b * n_bins).reshape(b, n_bins)
        if kind == "ece":
            dev[s : s + b] = np.sum(np.abs(sm - sums) / n, axis=1)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                gap_dev = np.abs(sm / cnt - np.where(nonempty, sums / np.maximum(counts, 1), 0.0))
            # A bin empty in a replicate (or in the sample) says nothing about that bin's gap noise.
            dev[s : s + b] = np.max(np.where((cnt > 0) & nonempty, gap_dev, 0.0), axis=1)
    bins = _cls.calibration_bins(c, ok, n_bins, scheme)
    est = bins.ece() if kind == "ece" else bins.mce()
    q = float(np.quantile(dev, level))
    return {
        "estimate": est,
        "debiased": ece_debiased(c, ok, n_bins, scheme) if kind == "ece" else math.nan,
        "ci_low": max(0.0, est - q),
        "ci_high": min(1.0, est + q),
        "level": level,
        "half_width": q,
        "n_boot": n_boot,
        "method": "bootstrap bound of sum_b |m*_b - m_b| (triangle inequality)",
    }


# --------------------------------------------------------------------------------------- multiplicity


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg (1995) adjusted p-values (false discovery rate), same order as the input.

    Equal to statsmodels ``multipletests(p, method="fdr_bh")[1]``; NaNs stay NaN and are not counted in m.
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    valid = ~np.isnan(p)
    if np.any((p[valid] < 0.0) | (p[valid] > 1.0)):
        raise ValueError("p-values must lie in [0, 1] (or be NaN)")
    out = p.copy()
    pv = p[valid]
    m = pv.shape[0]
    if m:
        order = np.argsort(pv, kind="stable")
        # Step-up: the i-th smallest (1-based) is scaled by m / i, then a running min from the largest down.
        scaled = pv[order] * m / np.arange(1, m + 1)
        adj = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
        res = np.empty(m)
        res[order] = adj
        out[valid] = res
    return [float(v) for v in out]


# ------------------------------------------------------------------------------------ non-inferiority


def _ni_verdict(p_ni: float, p_worse: float, alpha: float) -> str:
    if p_ni < alpha:
        return "replaces it"
    if p_worse < alpha:
        return "worse"
    return "inconclusive"


def noninferiority_accuracy(
    correct_ref: ArrayLike, correct_new: ArrayLike, margin: float, alpha: float = 0.05
) -> dict[str, Any]:
    """Does the new model replace the reference within ``margin`` of accuracy? Tango score test, one-sided.

    H0: acc(new) - acc(ref) <= -margin, rejected at ``alpha`` -> ``"replaces it"``; else, when H0':
    delta >= -margin is rejected at ``alpha`` -> ``"worse"`` (worse by more than the margin); else
    ``"inconclusive"``. Returns ``verdict``, ``delta``, ``margin``, ``p_value`` (of H0), ``p_worse``,
    ``lower`` / ``upper`` (one-sided ``1 - alpha`` bounds of the delta: "replaces it" exactly when
    ``lower > -margin``, to the bisection tolerance), ``smallest_margin`` (= -lower), ``n``.
    """
    alpha = _check_alpha(alpha)
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin must lie in [0, 1), got {margin}")
    b01, b10, n = _flag_pair(correct_ref, correct_new)
    z = _tango_z(b01, b10, n, -margin) if margin > 0.0 else _tango_z(b01, b10, n, 0.0)
    p_ni = float(_st.norm.sf(z))
    p_worse = float(_st.norm.cdf(z))
    zc = float(_st.norm.isf(alpha))
    lower, upper = _tango_root(b01, b10, n, zc), _tango_root(b01, b10, n, -zc)
    return {
        "verdict": _ni_verdict(p_ni, p_worse, alpha),
        "delta": (b01 - b10) / n,
        "margin": float(margin),
        "p_value": p_ni,
        "p_worse": p_worse,
        "lower": lower,
        "upper": upper,
        "smallest_margin": -lower,
        "n": n,
        "test": "Tango score, one-sided",
    }


def _ni_bootstrap(gain: float, gains: np.ndarray, margin: float, alpha: float) -> dict[str, Any]:
    """Basic-bootstrap one-sided bounds of the gain and the p-values that match them exactly."""
    n = gains.shape[0]
    # Pivot t - theta ~ t* - t: theta's one-sided lower bound is 2 t - (k-th largest t*); the same float
    # expression 2 t - t*_j is counted for the p, so p < alpha exactly when lower > -margin.
    piv = 2.0 * gain - gains  # bootstrap draws of the "true gain" under the basic pivot
    p_ni = (1 + int(np.count_nonzero(piv <= -margin))) / (1 + n)
    p_worse = (1 + int(np.count_nonzero(piv >= -margin))) / (1 + n)
    k = _min_count(alpha, n)
    srt = np.sort(piv)
    lower = -math.inf if k == 0 else float(srt[k - 1])
    upper = math.inf if k == 0 else float(srt[n - k])
    return {
        "verdict": _ni_verdict(p_ni, p_worse, alpha),
        "p_value": float(p_ni),
        "p_worse": float(p_worse),
        "lower": lower,
        "upper": upper,
        "smallest_margin": -lower,
    }


def noninferiority_bootstrap(
    stat_fn: StatFn,
    arrays_ref: Sequence[ArrayLike],
    arrays_new: Sequence[ArrayLike],
    margin: float,
    higher_is_better: bool,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    batched: bool | None = None,
) -> dict[str, Any]:
    """Non-inferiority of the new model for any metric, by the basic paired bootstrap (one-sided at alpha).

    gain = delta if ``higher_is_better`` else -delta (delta = new - ref). H0: gain <= -margin rejected ->
    ``"replaces it"``; H0': gain >= -margin rejected -> ``"worse"``; else ``"inconclusive"``. The basic
    interval removes the delta's plug-in bias (e.g. two ECEs biased by different amounts). ``lower``/``upper``
    are one-sided ``1 - alpha`` bounds of the gain ("replaces it" exactly when ``lower > -margin``);
    ``smallest_margin`` = -lower. Also ``delta``, ``gain``, ``stat_ref``, ``stat_new``, ``n_boot``.
    """
    alpha = _check_alpha(alpha)
    if not margin >= 0.0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    n_boot = _stats._check_n_boot(n_boot)
    xa, na = _stats._as_sample(arrays_ref, "arrays_ref")
    xb, nb = _stats._as_sample(arrays_new, "arrays_new")
    if na != nb:
        raise ValueError(f"ref and new must be evaluated on the same examples, got N = {na} and {nb}")
    fn, is_batched = _resolve_batched(stat_fn, batched)
    stat_a, stat_b = float(stat_fn(*xa)), float(stat_fn(*xb))
    reps = _stats._replicates([fn, fn], [[xa], [xb]], [na], n_boot, seed, is_batched)
    sign = 1.0 if higher_is_better else -1.0
    out = _ni_bootstrap(sign * (stat_b - stat_a), sign * (reps[1] - reps[0]), float(margin), alpha)
    out.update(
        delta=stat_b - stat_a,
        gain=sign * (stat_b - stat_a),
        margin=float(margin),
        stat_ref=stat_a,
        stat_new=stat_b,
        n_boot=n_boot,
        test="basic paired bootstrap, one-sided",
    )
    return out


__all__ = [
    "CONVENTIONS",
    "accuracy_delta_test",
    "benjamini_hochberg",
    "calibration_error_ci",
    "ece_debiased",
    "noninferiority_accuracy",
    "noninferiority_bootstrap",
    "permutation_test",
    "permutation_test_two_sample",
    "tango_test",
    "value_ci",
]
