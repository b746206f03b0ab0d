"""Classification and calibration metrics: twin tests against netcal and torch, plus exact tiny cases."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evalsuite.metrics import (
    CONVENTIONS,
    accuracy,
    brier,
    calibration_bins,
    ece,
    ece_adaptive,
    log_softmax,
    mce,
    nll,
    softmax,
    top_label,
)

EDGES = np.linspace(0.0, 1.0, 16)
SEEDS = [0, 1, 2, 3, 7]


@pytest.fixture(scope="module")
def netcal_metrics() -> Any:
    # netcal is a hard dependency; a failed import must fail the tests, not skip them. Imported here because
    # it is slow (pyro, gpytorch).
    import netcal.metrics

    return netcal.metrics


def _random_probs(seed: int, n: int = 1500, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * rng.uniform(0.5, 4.0)
    # Labels correlated with the logits so accuracy is neither 0 nor 1, and drawn from all K classes in
    # random order: netcal switches to binary mode when it sees <= 2 distinct labels.
    labels = np.where(rng.random(n) < 0.6, logits.argmax(1), rng.integers(0, k, n))
    assert len(np.unique(labels)) > 2
    return softmax(logits), labels


# ------------------------------------------------------------------------------------------- vs netcal


@pytest.mark.parametrize("seed", SEEDS)
def test_ece_mce_match_netcal_on_probability_matrix(netcal_metrics: Any, seed: int) -> None:
    probs, labels = _random_probs(seed, n=1000 + 37 * seed)
    conf, correct = top_label(probs, labels)
    want_ece = netcal_metrics.ECE(bins=15).measure(probs, labels)
    want_mce = netcal_metrics.MCE(bins=15).measure(probs, labels)
    assert ece(conf, correct) == pytest.approx(want_ece, abs=1e-6)
    assert mce(conf, correct) == pytest.approx(want_mce, abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_ece_mce_match_netcal_with_confidences_on_bin_edges(netcal_metrics: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 600
    # Half the confidences sit exactly on the linspace edges (0.0 and 1.0 included), half are continuous.
    conf = np.where(rng.random(n) < 0.5, rng.choice(EDGES, n), rng.random(n))
    correct = (rng.random(n) < conf).astype(np.int64)
    # 1-D confidences with 0/1 targets is netcal's binary mode: it takes the targets as "matched" directly.
    want_ece = netcal_metrics.ECE(bins=15).measure(conf, correct)
    want_mce = netcal_metrics.MCE(bins=15).measure(conf, correct)
    assert ece(conf, correct) == pytest.approx(want_ece, abs=1e-6)
    assert mce(conf, correct) == pytest.approx(want_mce, abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_ece_matches_netcal_multiclass_with_top_probability_on_edges(netcal_metrics: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 500, 10
    # Top probability exactly on an edge >= 2/15 (> 1/K, so it stays the argmax); the rest spread evenly.
    top = rng.choice(EDGES[2:], n)
    top_class = rng.integers(0, k, n)
    probs = np.repeat(((1.0 - top) / (k - 1))[:, None], k, axis=1)
    probs[np.arange(n), top_class] = top
    labels = np.where(rng.random(n) < top, top_class, rng.integers(0, k, n))
    assert len(np.unique(labels)) > 2
    conf, correct = top_label(probs, labels)
    np.testing.assert_array_equal(conf, top)
    assert ece(conf, correct) == pytest.approx(netcal_metrics.ECE(bins=15).measure(probs, labels), abs=1e-6)
    assert mce(conf, correct) == pytest.approx(netcal_metrics.MCE(bins=15).measure(probs, labels), abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_adaptive_ece_matches_netcal_quantile_bins_when_they_coincide(netcal_metrics: Any, seed: int) -> None:
    # netcal's equal_intervals=False uses np.quantile edges, not array_split. With N a multiple of 15 and
    # distinct confidences every interpolated quantile falls strictly between two neighbours, so both
    # schemes put exactly N / 15 examples in each bin and must agree.
    probs, labels = _random_probs(seed, n=15 * (60 + seed))
    conf, correct = top_label(probs, labels)
    assert len(np.unique(conf)) == conf.size
    want = netcal_metrics.ECE(bins=15, equal_intervals=False).measure(probs, labels)
    assert ece_adaptive(conf, correct) == pytest.approx(want, abs=1e-6)
    assert (calibration_bins(conf, correct, scheme="adaptive").counts == conf.size // 15).all()


# ------------------------------------------------------------------------------------ binning, by hand


def test_edge_membership_follows_half_open_bins_with_closed_last_bin() -> None:
    bins = calibration_bins(EDGES, np.ones(16, dtype=bool))
    # Each interior edge opens its own bin; 14/15 and 1.0 share the closed last bin.
    np.testing.assert_array_equal(bins.counts, [1] * 14 + [2])
    np.testing.assert_array_equal(bins.counts, np.histogram(EDGES, bins=EDGES)[0])
    np.testing.assert_array_equal(bins.lower, EDGES[:-1])
    np.testing.assert_array_equal(bins.upper, EDGES[1:])
    assert calibration_bins([0.0], [True]).counts[0] == 1
    assert calibration_bins([1.0], [True]).counts[-1] == 1


def test_four_example_ece_in_separate_bins() -> None:
    conf = [0.1, 0.3, 0.55, 0.95]
    correct = [0, 1, 1, 1]
    # Four different bins: ECE is the mean gap (0.1 + 0.7 + 0.45 + 0.05) / 4, MCE the largest gap.
    assert ece(conf, correct) == pytest.approx(0.325, abs=1e-12)
    assert mce(conf, correct) == pytest.approx(0.7, abs=1e-12)


def test_four_example_ece_with_shared_bins() -> None:
    conf = [0.94, 0.96, 0.21, 0.23]
    correct = [True, False, False, False]
    # Bin 14: acc 0.5, conf 0.95 -> gap 0.45; bin 3: acc 0, conf 0.22 -> gap 0.22; each weight 1/2.
    assert ece(conf, correct) == pytest.approx(0.5 * 0.45 + 0.5 * 0.22, abs=1e-12)
    assert mce(conf, correct) == pytest.approx(0.45, abs=1e-12)
    bins = calibration_bins(conf, correct)
    assert bins.counts.sum() == 4 and bins.counts[14] == 2 and bins.counts[3] == 2
    assert np.isnan(bins.confidence[0]) and np.isnan(bins.accuracy[0])


def test_single_bin_ece_is_gap_of_means() -> None:
    rng = np.random.default_rng(5)
    conf = rng.random(200)
    correct = rng.random(200) < 0.3
    assert ece(conf, correct, n_bins=1) == pytest.approx(abs(correct.mean() - conf.mean()), abs=1e-12)


def test_adaptive_bins_split_sorted_confidences_with_array_split() -> None:
    conf = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8]
    correct = [1, 0, 1, 0, 1, 1, 0]
    bins = calibration_bins(conf, correct, n_bins=3, scheme="adaptive")
    # Sorted: 0.1 0.2 0.3 | 0.5 0.7 | 0.8 0.9 (the first 7 % 3 = 1 bin takes the extra example).
    np.testing.assert_array_equal(bins.counts, [3, 2, 2])
    np.testing.assert_allclose(bins.lower, [0.1, 0.5, 0.8])
    np.testing.assert_allclose(bins.upper, [0.3, 0.7, 0.9])
    np.testing.assert_allclose(bins.confidence, [0.2, 0.6, 0.85])
    np.testing.assert_allclose(bins.accuracy, [1 / 3, 1.0, 0.5])
    want = (3 * abs(1 / 3 - 0.2) + 2 * 0.4 + 2 * 0.35) / 7
    assert ece_adaptive(conf, correct, n_bins=3) == pytest.approx(want, abs=1e-12)
    assert mce(conf, correct, n_bins=3, scheme="adaptive") == pytest.approx(0.4, abs=1e-12)


def test_adaptive_with_fewer_examples_than_bins_leaves_empty_bins() -> None:
    bins = calibration_bins([0.2, 0.9], [1, 1], scheme="adaptive")
    assert bins.counts.sum() == 2 and (bins.counts > 0).sum() == 2
    assert ece_adaptive([0.2, 0.9], [1, 1]) == pytest.approx((0.8 + 0.1) / 2, abs=1e-12)


def test_calibration_bins_to_dict_is_json_ready() -> None:
    d = calibration_bins([0.5, 0.52], [1, 0]).to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["counts"][7] == 2
    assert d["confidence"][0] is None


@pytest.mark.parametrize(
    ("conf", "correct", "match"),
    [
        ([1.2], [1], r"confidences must lie in \[0, 1\]"),
        ([-0.1], [1], r"confidences must lie in \[0, 1\]"),
        ([np.nan], [1], r"confidences must lie in \[0, 1\]"),
        ([], [], r"confidences must have shape \[N\]"),
        ([0.5, 0.5], [1], r"correct must have shape \(2,\)"),
        ([0.5], [2], "correct must be boolean or 0/1"),
    ],
)
def test_calibration_rejects_bad_input(conf: list[float], correct: list[int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ece(conf, correct)


def test_unknown_scheme_and_bad_bins_raise() -> None:
    with pytest.raises(ValueError, match="scheme"):
        calibration_bins([0.5], [1], scheme="quantile")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_bins"):
        ece([0.5], [1], n_bins=0)


# ---------------------------------------------------------------------------- softmax, nll, brier, acc


@pytest.mark.parametrize("seed", SEEDS)
def test_nll_matches_torch_cross_entropy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(300, 7)) * 5
    labels = rng.integers(0, 7, 300)
    want = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    assert nll(logits, labels) == pytest.approx(want, abs=1e-9)


def test_nll_and_softmax_are_stable_for_huge_logits() -> None:
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [0.0, 1e4, 1e4 - 1.0]])
    labels = np.array([1, 2, 2])
    want = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)).item()
    got = nll(logits, labels)
    assert np.isfinite(got) and got == pytest.approx(want, rel=1e-12)
    p = softmax(logits)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(p, torch.softmax(torch.from_numpy(logits), 1).numpy(), atol=1e-12)
    np.testing.assert_allclose(p[1], [1 / 3] * 3, atol=1e-15)
    assert np.isfinite(log_softmax(logits)).all()


def test_nll_of_uniform_logits_is_log_k() -> None:
    assert nll(np.zeros((4, 10)), [0, 3, 5, 9]) == pytest.approx(np.log(10), abs=1e-12)


def test_softmax_is_shift_invariant_and_accepts_lists() -> None:
    z = [[1.0, 2.0, 3.0]]
    np.testing.assert_allclose(softmax(z), softmax(np.array(z) + 1000.0), atol=1e-15)
    assert softmax(z).dtype == np.float64


def test_brier_hand_cases() -> None:
    # Row 1 perfect (0), row 2 contributes 0.25 + 0.25: mean 0.25.
    assert brier([[1.0, 0.0], [0.5, 0.5]], [0, 1]) == pytest.approx(0.25, abs=1e-15)
    # Sum over classes, not divided by K: a confidently wrong prediction scores 2.
    assert brier([[0.0, 1.0, 0.0]], [0]) == pytest.approx(2.0, abs=1e-15)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_brier_matches_explicit_one_hot_formula(seed: int) -> None:
    probs, labels = _random_probs(seed, n=400)
    onehot = np.eye(probs.shape[1])[labels]
    assert brier(probs, labels) == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, axis=1)), abs=1e-12)


def test_accuracy_from_probs_logits_and_predictions() -> None:
    probs = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]
    labels = [0, 1, 1, 0]
    assert accuracy(probs, labels) == 0.5
    assert accuracy(np.log(probs), labels) == 0.5
    assert accuracy([0, 1, 0, 1], labels) == 0.5
    assert isinstance(accuracy(probs, labels), float)


def test_labels_are_validated() -> None:
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        nll(np.zeros((2, 3)), [0, 3])
    with pytest.raises(ValueError, match=r"labels must have shape \[2\]"):
        brier(np.full((2, 3), 1 / 3), [0])
    with pytest.raises(ValueError, match="labels must be integers"):
        accuracy([[0.5, 0.5]], [0.5])


def test_metrics_return_python_floats() -> None:
    probs, labels = _random_probs(0, n=100)
    conf, correct = top_label(probs, labels)
    for value in (
        ece(conf, correct),
        ece_adaptive(conf, correct),
        mce(conf, correct),
        nll(np.log(probs), labels),
        brier(probs, labels),
    ):
        assert type(value) is float


# --------------------------------------------------------------------------------- conventions, imports


def test_conventions_record_the_binning_and_are_json_ready() -> None:
    assert CONVENTIONS["ece_bins"] == 15
    assert CONVENTIONS["ece_norm"] == "L1"
    assert "top-label" in CONVENTIONS["ece_label"]
    assert "higher" in CONVENTIONS["ood"]
    json.dumps(CONVENTIONS)


def test_metrics_and_ood_packages_do_not_import_torch() -> None:
    code = (
        "import sys; import evalsuite.metrics, evalsuite.ood; "
        "bad = [m for m in ('torch', 'netcal') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
