"""OOD-detection metrics as pure numpy functions on two score arrays.

Inputs are [N_id] and [N_ood] scores (anything ``np.asarray`` accepts), used in float64; outputs are Python
floats. See :data:`CONVENTION` for the one sign convention every function here follows.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

CONVENTION = (
    "A score is higher for 'more out-of-distribution'. AUROC and AUPR-out take OOD as the positive class; "
    "AUPR-in takes ID as positive (scores negated). AUROC is exact with ties counted 1/2 (Mann-Whitney U; "
    "equals sklearn roc_auc_score). AUPR is average precision, a step sum over distinct thresholds with no "
    "interpolation (equals sklearn average_precision_score). FPR@95: an example is accepted as ID when "
    "score <= t, with t the ceil(0.95 * N_id)-th smallest ID score, the strictest threshold accepting at "
    "least 95% of ID; FPR@95 is the fraction of OOD accepted, ties at t accepted (the first ROC point with "
    "ID-TPR >= 0.95, as OpenOOD's fpr_recall; not the nearest-recall point of Hendrycks/torch-uncertainty)."
)


def _as_scores(scores_id: ArrayLike, scores_ood: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s_id = np.asarray(scores_id, dtype=np.float64)
    s_ood = np.asarray(scores_ood, dtype=np.float64)
    for name, s in (("scores_id", s_id), ("scores_ood", s_ood)):
        if s.ndim != 1 or s.shape[0] == 0:
            raise ValueError(f"{name} must have shape [N] with N > 0, got {s.shape}")
        if np.isnan(s).any():
            raise ValueError(f"{name} contains NaN")
    return s_id, s_ood


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of [N] values, tied values sharing their mean rank (scipy rankdata 'average')."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    # Tie groups are runs of equal sorted values (compared with !=, not np.diff, so a run of inf stays one
    # group); a group spanning sorted positions i..j (0-based) gets the mean rank (i + j) / 2 + 1.
    starts = np.r_[0, np.nonzero(xs[1:] != xs[:-1])[0] + 1]
    ends = np.r_[starts[1:], xs.shape[0]] - 1
    ranks = np.empty(x.shape[0], dtype=np.float64)
    ranks[order] = np.repeat((starts + ends) / 2.0 + 1.0, ends - starts + 1)
    return ranks


def auroc(scores_id: ArrayLike, scores_ood: ArrayLike) -> float:
    """Area under the ROC curve with OOD as positive: P(s_ood > s_id) + 0.5 P(s_ood == s_id)."""
    s_id, s_ood = _as_scores(scores_id, scores_ood)
    n_id, n_ood = s_id.shape[0], s_ood.shape[0]
    # Mann-Whitney U from average ranks: exact, and ties count one half by construction.
    ranks = _average_ranks(np.concatenate([s_ood, s_id]))
    u = float(np.sum(ranks[:n_ood])) - n_ood * (n_ood + 1) / 2.0
    return u / (n_id * n_ood)


def _average_precision(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision of ``pos`` (positives) vs ``neg``, higher score = more positive."""
    scores = np.concatenate([pos, neg])
    is_pos = np.concatenate([np.ones(pos.shape[0]), np.zeros(neg.shape[0])])
    order = np.argsort(-scores, kind="stable")
    scores, is_pos = scores[order], is_pos[order]
    # One operating point per distinct score, as sklearn's _binary_clf_curve: tied examples enter together.
    last_of_group = np.r_[np.nonzero(scores[1:] != scores[:-1])[0], scores.shape[0] - 1]
    tp = np.cumsum(is_pos)[last_of_group]
    seen = last_of_group + 1.0
    precision = tp / seen
    recall = tp / pos.shape[0]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def aupr_out(scores_id: ArrayLike, scores_ood: ArrayLike) -> float:
    """Area under the precision-recall curve with OOD as positive (average precision)."""
    s_id, s_ood = _as_scores(scores_id, scores_ood)
    return _average_precision(s_ood, s_id)


def aupr_in(scores_id: ArrayLike, scores_ood: ArrayLike) -> float:
    """Area under the precision-recall curve with ID as positive, ranking by the negated score."""
    s_id, s_ood = _as_scores(scores_id, scores_ood)
    return _average_precision(-s_id, -s_ood)


def fpr_at_tpr(scores_id: ArrayLike, scores_ood: ArrayLike, tpr: float = 0.95) -> float:
    """Fraction of [N_ood] OOD scores accepted as ID at the threshold accepting ``tpr`` of [N_id] ID scores.

    An example is accepted as ID when ``score <= t``; ``t`` is the k-th smallest ID score with
    k = ceil(tpr * N_id), the strictest threshold that accepts at least ``tpr`` of ID. OOD ties at ``t``
    count as accepted.
    """
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must lie in (0, 1], got {tpr}")
    s_id, s_ood = _as_scores(scores_id, scores_ood)
    n_id = s_id.shape[0]
    # Smallest k with k / n_id >= tpr; the correction step guards against float products such as
    # 0.07 * 100 = 7.000000000000001 pushing ceil one too high.
    k = max(1, math.ceil(tpr * n_id))
    if k > 1 and (k - 1) / n_id >= tpr:
        k -= 1
    t = np.partition(s_id, k - 1)[k - 1]
    return float(np.mean(s_ood <= t))


def fpr95(scores_id: ArrayLike, scores_ood: ArrayLike) -> float:
    """:func:`fpr_at_tpr` at 95% of ID accepted."""
    return fpr_at_tpr(scores_id, scores_ood, 0.95)


def fpr_at_ood_tpr(scores_id: ArrayLike, scores_ood: ArrayLike, tpr: float = 0.95) -> float:
    """Fraction of [N_id] ID scores flagged as OOD at the threshold detecting ``tpr`` of [N_ood] OOD scores.

    The OOD-positive convention of OpenOOD v1.5 (``auc_and_fpr_recall``) and pytorch-ood (``fpr_at_tpr``): an
    example is flagged as OOD when ``score >= t``; ``t`` is the k-th largest OOD score with
    k = ceil(tpr * N_ood), the strictest threshold detecting at least ``tpr`` of OOD (the first point of the
    full ROC curve, sklearn ``roc_curve(drop_intermediate=False)``, with TPR >= tpr). ID ties at ``t`` count
    as flagged. Not the same number as :func:`fpr_at_tpr`, which fixes the ID acceptance rate instead.
    """
    # Mirror image of fpr_at_tpr: negate the scores and swap the roles of ID and OOD.
    s_id, s_ood = _as_scores(scores_id, scores_ood)
    return fpr_at_tpr(-s_ood, -s_id, tpr)


def fpr95_ood(scores_id: ArrayLike, scores_ood: ArrayLike) -> float:
    """:func:`fpr_at_ood_tpr` at 95% of OOD detected: the "FPR95" of OpenOOD v1.5 and pytorch-ood."""
    return fpr_at_ood_tpr(scores_id, scores_ood, 0.95)
