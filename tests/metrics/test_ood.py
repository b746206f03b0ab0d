"""OOD metrics: twin tests against scikit-learn and scipy, plus exact tiny cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from evalsuite.metrics import OOD_CONVENTION, aupr_in, aupr_out, auroc, fpr95, fpr_at_tpr
from evalsuite.metrics.ood import _average_ranks

SEEDS = [0, 1, 2, 3, 7]


def _scores(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_id, n_ood = 400 + 13 * seed, 250 + 7 * seed
    s_id = rng.normal(0.0, 1.0, n_id)
    s_ood = rng.normal(0.8, 1.2, n_ood)
    if ties:
        # Few distinct values: most pairs, within and across the two sets, are tied.
        s_id, s_ood = np.round(s_id), np.round(s_ood)
    return s_id, s_ood


def _labels(s_id: np.ndarray, s_ood: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y with OOD = 1, concatenated scores)."""
    return np.r_[np.zeros(len(s_id)), np.ones(len(s_ood))], np.r_[s_id, s_ood]


# ---------------------------------------------------------------------------------------------- AUROC


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_auroc_matches_sklearn(seed: int, ties: bool) -> None:
    s_id, s_ood = _scores(seed, ties)
    y, s = _labels(s_id, s_ood)
    assert auroc(s_id, s_ood) == pytest.approx(roc_auc_score(y, s), abs=1e-9)


def test_auroc_heavy_ties_with_two_values() -> None:
    rng = np.random.default_rng(11)
    s_id = rng.integers(0, 2, 1000).astype(float)
    s_ood = rng.integers(0, 2, 700).astype(float)
    y, s = _labels(s_id, s_ood)
    assert auroc(s_id, s_ood) == pytest.approx(roc_auc_score(y, s), abs=1e-9)


def test_auroc_hand_cases() -> None:
    assert auroc([0.0, 1.0, 2.0], [3.0, 4.0]) == 1.0
    assert auroc([3.0, 4.0], [0.0, 1.0, 2.0]) == 0.0
    assert auroc([5.0] * 4, [5.0] * 3) == 0.5
    # Pairs (ood, id): (1,0) win, (1,1) tie = 1/2, (2,0) win, (2,1) win -> 3.5 / 4.
    assert auroc([0.0, 1.0], [1.0, 2.0]) == 0.875
    assert isinstance(auroc([0.0], [1.0]), float)


def test_average_ranks_match_scipy_including_infinities() -> None:
    rng = np.random.default_rng(3)
    x = np.r_[np.round(rng.normal(size=200)), [np.inf, np.inf, -np.inf, 0.0, -0.0]]
    np.testing.assert_array_equal(_average_ranks(x), rankdata(x, method="average"))


def test_swapping_sets_complements_auroc() -> None:
    s_id, s_ood = _scores(4, ties=True)
    assert auroc(s_ood, s_id) == pytest.approx(1.0 - auroc(s_id, s_ood), abs=1e-12)


# ----------------------------------------------------------------------------------------------- AUPR


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_aupr_matches_sklearn_average_precision(seed: int, ties: bool) -> None:
    s_id, s_ood = _scores(seed, ties)
    y, s = _labels(s_id, s_ood)
    assert aupr_out(s_id, s_ood) == pytest.approx(average_precision_score(y, s), abs=1e-9)
    assert aupr_in(s_id, s_ood) == pytest.approx(average_precision_score(1 - y, -s), abs=1e-9)


def test_aupr_hand_cases() -> None:
    assert aupr_out([0.0, 1.0], [2.0, 3.0, 4.0]) == 1.0
    assert aupr_in([0.0, 1.0], [2.0, 3.0, 4.0]) == 1.0
    # All tied: a single operating point at full recall, precision = prevalence.
    assert aupr_out([1.0] * 3, [1.0] * 1) == pytest.approx(0.25, abs=1e-15)
    assert aupr_in([1.0] * 3, [1.0] * 1) == pytest.approx(0.75, abs=1e-15)
    # OOD ranked ood(3) > id(2) > ood(1): precision 1 at recall 1/2, 2/3 at recall 1.
    assert aupr_out([2.0], [1.0, 3.0]) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3, abs=1e-15)


def test_aupr_in_is_aupr_out_with_roles_and_signs_swapped() -> None:
    s_id, s_ood = _scores(2, ties=True)
    assert aupr_in(s_id, s_ood) == pytest.approx(aupr_out(-s_ood, -s_id), abs=1e-12)


# ------------------------------------------------------------------------------------------------ FPR


def test_fpr95_hand_case_with_tie_at_threshold() -> None:
    s_id = np.arange(100.0)  # 95% of ID accepted at t = 94 (the 95th smallest).
    s_ood = np.array([50.5, 94.0, 94.5, 95.0, 200.0])
    # Accepted as ID (score <= 94): 50.5 and the tie 94.0 -> 2 / 5.
    assert fpr95(s_id, s_ood) == pytest.approx(0.4, abs=1e-15)
    assert fpr_at_tpr(s_id, s_ood, 0.95) == fpr95(s_id, s_ood)


def test_fpr_threshold_count_is_not_pushed_up_by_float_rounding() -> None:
    # 0.07 * 100 = 7.000000000000001 in floats; the threshold must still be the 7th smallest ID score.
    assert 0.07 * 100 > 7
    assert fpr_at_tpr(np.arange(100.0), [6.0, 7.0], 0.07) == 0.5
    assert fpr_at_tpr(np.arange(100.0), [94.0, 95.0], 0.95) == 0.5
    assert fpr_at_tpr(np.arange(20.0), [18.0, 18.5], 0.95) == 0.5  # k = 19 -> t = 18
    # 21 ID scores: 0.95 * 21 = 19.95 -> k = 20 -> t = 19.
    assert fpr_at_tpr(np.arange(21.0), [19.0, 19.5], 0.95) == 0.5


def test_fpr_hand_limits() -> None:
    assert fpr95([0.0, 1.0, 2.0], [10.0, 11.0]) == 0.0
    assert fpr95([10.0, 11.0], [0.0, 1.0, 2.0]) == 1.0
    assert fpr95([1.0] * 5, [1.0] * 5) == 1.0  # ties with the threshold are accepted
    assert fpr_at_tpr(np.arange(10.0), [9.0, 9.5], tpr=1.0) == 0.5
    assert fpr_at_tpr(np.arange(10.0), [0.0, 0.5], tpr=0.01) == 0.5  # k = 1 -> t = 0


def _fpr_first_roc_point(s_id: np.ndarray, s_ood: np.ndarray, tpr: float, drop: bool) -> float:
    # OpenOOD's fpr_recall: ID positive, confidence = -score, first ROC point whose TPR reaches the target.
    y = np.r_[np.ones(len(s_id)), np.zeros(len(s_ood))]
    fpr, tpr_curve, _ = roc_curve(y, -np.r_[s_id, s_ood], drop_intermediate=drop)
    return float(fpr[np.argmax(tpr_curve >= tpr)])


@pytest.mark.parametrize("tpr", [0.95, 0.8, 0.5])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_fpr_matches_first_sklearn_roc_point(seed: int, ties: bool, tpr: float) -> None:
    s_id, s_ood = _scores(seed, ties)
    assert fpr_at_tpr(s_id, s_ood, tpr) == pytest.approx(
        _fpr_first_roc_point(s_id, s_ood, tpr, drop=False), abs=1e-12
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_fpr_matches_default_roc_curve_without_ties(seed: int) -> None:
    # Without ties every ROC step is vertical or horizontal, so dropping collinear points (sklearn's default)
    # cannot move the first point at TPR >= 0.95 off its FPR.
    s_id, s_ood = _scores(seed, ties=False)
    assert fpr95(s_id, s_ood) == pytest.approx(_fpr_first_roc_point(s_id, s_ood, 0.95, drop=True), abs=1e-12)


def test_fpr_equals_ood_fraction_below_id_quantile() -> None:
    rng = np.random.default_rng(9)
    s_id, s_ood = rng.random(1000), rng.random(500) + 0.5
    t = np.sort(s_id)[math.ceil(0.95 * 1000) - 1]
    assert fpr95(s_id, s_ood) == pytest.approx(np.mean(s_ood <= t), abs=1e-15)


# --------------------------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("fn", [auroc, aupr_in, aupr_out, fpr95])
def test_ood_metrics_reject_bad_input(fn: object) -> None:
    with pytest.raises(ValueError, match=r"scores_id must have shape \[N\] with N > 0"):
        fn([], [1.0])  # type: ignore[operator]
    with pytest.raises(ValueError, match="scores_ood contains NaN"):
        fn([1.0], [np.nan])  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"scores_id must have shape \[N\] with N > 0"):
        fn([[1.0]], [1.0])  # type: ignore[operator]


@pytest.mark.parametrize("tpr", [0.0, -0.1, 1.5])
def test_fpr_rejects_tpr_out_of_range(tpr: float) -> None:
    with pytest.raises(ValueError, match=r"tpr must lie in \(0, 1\]"):
        fpr_at_tpr([1.0], [2.0], tpr)


def test_convention_is_written_down() -> None:
    assert "higher" in OOD_CONVENTION and "OOD as the positive" in OOD_CONVENTION
    assert "AUPR-in takes ID as positive" in OOD_CONVENTION
