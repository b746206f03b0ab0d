"""Classification and calibration metrics as pure numpy functions.

Everything here takes anything ``np.asarray`` accepts, works in float64 and returns plain Python floats
(or a small dataclass for per-bin statistics), so a report can rebuild every number from saved per-example
arrays on a machine without torch. Shapes: ``N`` examples, ``K`` classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

Scheme = Literal["uniform", "adaptive"]

DEFAULT_BINS = 15

CONVENTIONS: dict[str, Any] = {
    "ece_bins": DEFAULT_BINS,
    "ece_norm": "L1",
    "ece_label": "top-label (max probability vs argmax correct)",
    "ece_weighting": "bin count / N",
    "ece_binning": (
        "uniform: 15 equal-width bins, edges np.linspace(0, 1, 16); bin b holds edges[b] <= c < edges[b+1], "
        "the last bin is closed so c == 1.0 belongs to it (same membership as netcal 1.4.0 ECE/MCE)"
    ),
    "ece_adaptive_binning": (
        "adaptive: 15 equal-mass bins; stable sort by confidence, np.array_split into near-equal counts "
        "(the first N % 15 bins hold one more); ties may straddle a bin boundary, broken by input order"
    ),
    "mce": "max |accuracy - confidence| over non-empty uniform bins",
    "brier": "mean over examples of sum over classes of (p - onehot)^2; range [0, 2], not divided by K",
    "nll": "mean natural-log negative log-likelihood from logits via a log-sum-exp log-softmax",
    "accuracy": "argmax over classes; ties go to the lowest class index (np.argmax)",
}


# ----------------------------------------------------------------------------------------------- validation


def _as_2d(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} must have shape [N, K] with N, K > 0, got {a.shape}")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN")
    return a


def _as_labels(labels: ArrayLike, n: int, k: int | None = None) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"labels must have shape [{n}], got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        # Labels saved through float arrays are fine as long as they are whole numbers.
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.mod(y, 1) == 0):
            raise ValueError(f"labels must be integers, got dtype {y.dtype}")
        y = y.astype(np.int64)
    if k is not None and y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}), got range [{y.min()}, {y.max()}]")
    return y.astype(np.int64, copy=False)


def _as_conf_correct(confidences: ArrayLike, correct: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(confidences, dtype=np.float64)
    ok = np.asarray(correct)
    if c.ndim != 1 or c.shape[0] == 0:
        raise ValueError(f"confidences must have shape [N] with N > 0, got {c.shape}")
    if ok.shape != c.shape:
        raise ValueError(f"correct must have shape {c.shape}, got {ok.shape}")
    # NaN fails both comparisons, so it is rejected here too.
    if not np.all((c >= 0.0) & (c <= 1.0)):
        raise ValueError("confidences must lie in [0, 1]")
    if ok.dtype != np.bool_ and not np.all((ok == 0) | (ok == 1)):
        raise ValueError("correct must be boolean or 0/1")
    return c, ok.astype(np.float64)


def _check_bins(n_bins: int) -> None:
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")


# ------------------------------------------------------------------------------------------ basic metrics


def log_softmax(logits: ArrayLike) -> np.ndarray:
    """Stable log-softmax over the last axis: [N, K] logits -> [N, K] log-probabilities (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    m = np.max(z, axis=-1, keepdims=True)
    # A row of all -inf would make z - m NaN; such a row has no valid distribution anyway.
    shifted = z - m
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def softmax(logits: ArrayLike) -> np.ndarray:
    """Stable softmax over the last axis: [N, K] logits -> [N, K] probabilities (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def accuracy(probs_or_pred: ArrayLike, labels: ArrayLike) -> float:
    """Top-1 accuracy of [N, K] probabilities or logits (argmax taken), or of [N] predicted labels."""
    p = np.asarray(probs_or_pred)
    if p.ndim == 2:
        if p.shape[0] == 0 or p.shape[1] == 0:
            raise ValueError(f"probs_or_pred must have shape [N, K] with N, K > 0, got {p.shape}")
        pred = np.argmax(p, axis=1)
    elif p.ndim == 1:
        if p.shape[0] == 0:
            raise ValueError("probs_or_pred is empty")
        pred = _as_labels(p, p.shape[0])
    else:
        raise ValueError(f"probs_or_pred must be [N, K] or [N], got {p.shape}")
    y = _as_labels(labels, pred.shape[0])
    return float(np.mean(pred == y))


def nll(logits: ArrayLike, labels: ArrayLike) -> float:
    """Mean negative log-likelihood (nats) of [N] labels under [N, K] logits, via a stable log-softmax."""
    z = _as_2d(logits, "logits")
    y = _as_labels(labels, z.shape[0], z.shape[1])
    return float(-np.mean(log_softmax(z)[np.arange(z.shape[0]), y]))


def brier(probs: ArrayLike, labels: ArrayLike) -> float:
    """Multi-class Brier score of [N, K] probabilities against [N] labels.

    Mean over examples of the *sum* over classes of ``(p_k - onehot_k)^2`` (Brier 1950; range [0, 2]).
    Some libraries divide by K as well; this one does not.
    """
    p = _as_2d(probs, "probs")
    y = _as_labels(labels, p.shape[0], p.shape[1])
    sq = np.sum(p * p, axis=1)
    # sum_k (p_k - 1[k=y])^2 = sum_k p_k^2 - 2 p_y + 1, without building the one-hot matrix.
    return float(np.mean(sq - 2.0 * p[np.arange(p.shape[0]), y] + 1.0))


def top_label(probs: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """[N, K] probabilities and [N] labels -> ([N] max probability, [N] bool argmax-is-correct)."""
    p = _as_2d(probs, "probs")
    y = _as_labels(labels, p.shape[0], p.shape[1])
    return np.max(p, axis=1), np.argmax(p, axis=1) == y


# ------------------------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class CalibrationBins:
    """Per-bin statistics, each array of shape [n_bins].

    ``lower``/``upper`` are the bin edges for the uniform scheme and the smallest/largest member confidence
    for the adaptive scheme. ``confidence`` and ``accuracy`` are the bin means, NaN where ``counts`` is 0.
    """

    scheme: str
    lower: np.ndarray
    upper: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def n(self) -> int:
        """Total number of examples over all bins."""
        return int(self.counts.sum())

    @property
    def gap(self) -> np.ndarray:
        """[n_bins] |accuracy - confidence|, NaN for empty bins."""
        return np.abs(self.accuracy - self.confidence)

    def ece(self) -> float:
        """Expected calibration error: count-weighted mean |accuracy - confidence| over non-empty bins."""
        nonempty = self.counts > 0
        w = self.counts[nonempty] / self.n
        return float(np.sum(w * self.gap[nonempty]))

    def mce(self) -> float:
        """Maximum calibration error: the largest |accuracy - confidence| over non-empty bins."""
        return float(np.max(self.gap[self.counts > 0]))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; empty-bin means become None."""

        def _list(a: np.ndarray) -> list[float | None]:
            return [None if np.isnan(v) else float(v) for v in a]

        return {
            "scheme": self.scheme,
            "lower": _list(self.lower),
            "upper": _list(self.upper),
            "counts": [int(v) for v in self.counts],
            "confidence": _list(self.confidence),
            "accuracy": _list(self.accuracy),
        }


def _bin_means(
    index: np.ndarray, c: np.ndarray, ok: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=c, minlength=n_bins)
    acc_sum = np.bincount(index, weights=ok, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts, conf_sum / counts, acc_sum / counts


def calibration_bins(
    confidences: ArrayLike, correct: ArrayLike, n_bins: int = DEFAULT_BINS, scheme: Scheme = "uniform"
) -> CalibrationBins:
    """Bin [N] top-label confidences in [0, 1] with [N] correctness flags (bool or 0/1).

    ``scheme="uniform"``: equal-width bins on [0, 1]; ``scheme="adaptive"``: equal-mass bins.
    """
    _check_bins(n_bins)
    c, ok = _as_conf_correct(confidences, correct)
    n_bins = int(n_bins)
    if scheme == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        # Edge rule of netcal 1.4.0, which bins with np.histogramdd / scipy binned_statistic_dd on these same
        # linspace edges: bins are half-open [e_b, e_{b+1}), so a confidence exactly on an interior edge goes
        # to the upper bin; the last bin is closed (netcal first clips confidences to [eps, 1 - eps], so 1.0
        # lands in the last bin and 0.0 in the first). searchsorted(side="right") is np.digitize's rule.
        index = np.minimum(np.searchsorted(edges, c, side="right") - 1, n_bins - 1)
        counts, conf, acc = _bin_means(index, c, ok, n_bins)
        return CalibrationBins("uniform", edges[:-1].copy(), edges[1:].copy(), counts, conf, acc)
    if scheme == "adaptive":
        # Equal mass: a stable sort keeps tied confidences in input order, so the split is deterministic;
        # np.array_split gives the first N % n_bins bins one extra example.
        order = np.argsort(c, kind="stable")
        index = np.empty(c.shape[0], dtype=np.int64)
        lower = np.full(n_bins, np.nan)
        upper = np.full(n_bins, np.nan)
        for b, members in enumerate(np.array_split(order, n_bins)):
            index[members] = b
            if members.size:
                lower[b], upper[b] = c[members[0]], c[members[-1]]
        counts, conf, acc = _bin_means(index, c, ok, n_bins)
        return CalibrationBins("adaptive", lower, upper, counts, conf, acc)
    raise ValueError(f"unknown binning scheme {scheme!r}; expected 'uniform' or 'adaptive'")


def ece(confidences: ArrayLike, correct: ArrayLike, n_bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error: L1, top-label, equal-width bins weighted by count. [N], [N] -> float."""
    return calibration_bins(confidences, correct, n_bins, "uniform").ece()


def ece_adaptive(confidences: ArrayLike, correct: ArrayLike, n_bins: int = DEFAULT_BINS) -> float:
    """Adaptive ECE: as :func:`ece` but with equal-mass bins. [N], [N] -> float."""
    return calibration_bins(confidences, correct, n_bins, "adaptive").ece()


def mce(
    confidences: ArrayLike, correct: ArrayLike, n_bins: int = DEFAULT_BINS, scheme: Scheme = "uniform"
) -> float:
    """Maximum calibration error: max |accuracy - confidence| over non-empty bins. [N], [N] -> float."""
    return calibration_bins(confidences, correct, n_bins, scheme).mce()
