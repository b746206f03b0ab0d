"""Seeded simulation suite for :mod:`evalsuite.metrics.inference`: do the tests hold their error rates?

Two models see the same examples with correlated difficulty: example i has a shared latent difficulty u_i and
a shared uniform U_i; model m's logit is l = mu_m + s (rho u_i + sqrt(1 - rho^2) v_im), it is correct when
U_i < sigmoid(l) (so P(correct | l) = sigmoid(l), and the two models err on the same examples) and reports
confidence sigmoid(T_m l): T = 1 is calibrated, T > 1 overconfident. The population ECE (15 equal-width bins)
is computed by quadrature over l. Everything is drawn once per test, vectorized over replicates.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st
from scipy.special import expit

from evalsuite.metrics import aupr_in, aupr_out, auroc, ece, ece_adaptive, fpr95, fpr95_ood, mce
from evalsuite.metrics.inference import (
    accuracy_delta_test,
    calibration_error_ci,
    noninferiority_accuracy,
    noninferiority_bootstrap,
    permutation_test,
    permutation_test_two_sample,
)

ALPHA = 0.05
S, RHO = 1.5, 0.8


def _draw(
    rng: np.random.Generator, r: int, n: int, mus: list[float], temps: list[float]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """-> per model ([r, n] confidence, [r, n] correct, [r, n] logit), difficulty shared across models."""
    u = rng.standard_normal((r, n))
    shared_u = rng.random((r, n))
    out = []
    for mu, t in zip(mus, temps):
        logit = mu + S * (RHO * u + np.sqrt(1 - RHO * RHO) * rng.standard_normal((r, n)))
        out.append((expit(t * logit), shared_u < expit(logit), logit))
    return out


def _population_ece(mu: float, t: float, n_bins: int = 15) -> float:
    grid = np.linspace(mu - 12 * S, mu + 12 * S, 400_001)
    w = st.norm.pdf(grid, mu, S)
    w /= w.sum()
    conf = expit(t * grid)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.minimum(np.searchsorted(edges, conf, side="right") - 1, n_bins - 1)
    return float(np.abs(np.bincount(index, weights=w * (expit(grid) - conf), minlength=n_bins)).sum())


def _population_accuracy(mu: float) -> float:
    grid = np.linspace(mu - 12 * S, mu + 12 * S, 400_001)
    w = st.norm.pdf(grid, mu, S)
    return float(np.sum(w * expit(grid)) / np.sum(w))


def _nll(conf: np.ndarray, ok: np.ndarray) -> np.ndarray:
    return -np.log(np.where(ok, conf, 1.0 - conf))


def _agrees(res: dict[str, float]) -> bool:
    return (res["ci_low"] > 0.0 or res["ci_high"] < 0.0) == (res["p_value"] < ALPHA)


# ------------------------------------------------------------------------------------- null: false positives

_R_NULL, _N_NULL = 300, 300


@pytest.fixture(scope="module")
def null_models() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return _draw(np.random.default_rng(20240901), _R_NULL, _N_NULL, [2.0, 2.0], [1.3, 1.3])


_ID_METRICS = {
    "ece": (ece, lambda c, ok: [c, ok]),
    "ece_adaptive": (ece_adaptive, lambda c, ok: [c, ok]),
    "mce": (mce, lambda c, ok: [c, ok]),
    "nll": (np.mean, lambda c, ok: [_nll(c, ok)]),
    "brier": (np.mean, lambda c, ok: [(c - ok) ** 2]),
}


@pytest.mark.parametrize("name", sorted(_ID_METRICS))
def test_permutation_false_positive_rate_under_the_null(
    name: str, null_models: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> None:
    fn, args = _ID_METRICS[name]
    (ca, oka, _), (cb, okb, _) = null_models
    rejected = 0
    for r in range(_R_NULL):
        res = permutation_test(fn, args(ca[r], oka[r]), args(cb[r], okb[r]), n_perm=199, max_perm=199, seed=r)
        assert _agrees(res)
        rejected += res["p_value"] < ALPHA
    assert 0.02 <= rejected / _R_NULL <= 0.08, (name, rejected / _R_NULL)


@pytest.mark.parametrize("fn", [auroc, aupr_in, aupr_out, fpr95, fpr95_ood], ids=lambda f: f.__name__)
def test_permutation_false_positive_rate_under_the_null_ood(fn: object) -> None:
    rng = np.random.default_rng(7)
    n_id, n_ood = 300, 200
    # OOD score: shared per-example part (difficulty) plus model noise; OOD shifted up by 1.
    base_id, base_ood = rng.standard_normal((_R_NULL, n_id)), 1.0 + rng.standard_normal((_R_NULL, n_ood))
    a_id, b_id = (base_id + 0.5 * rng.standard_normal(base_id.shape) for _ in range(2))
    a_ood, b_ood = (base_ood + 0.5 * rng.standard_normal(base_ood.shape) for _ in range(2))
    rejected = 0
    for r in range(_R_NULL):
        res = permutation_test_two_sample(
            fn, [a_id[r]], [a_ood[r]], [b_id[r]], [b_ood[r]], n_perm=199, max_perm=199, seed=r
        )
        assert _agrees(res)
        rejected += res["p_value"] < ALPHA
    assert 0.02 <= rejected / _R_NULL <= 0.08, (fn, rejected / _R_NULL)


def test_accuracy_test_false_positive_rate_under_the_null() -> None:
    (_, oka, _), (_, okb, _) = _draw(np.random.default_rng(11), 2000, 2000, [2.0, 2.0], [1.0, 1.0])
    res = [accuracy_delta_test(oka[r], okb[r], ALPHA) for r in range(oka.shape[0])]
    assert all(_agrees(x) for x in res)
    rate = np.mean([x["p_value"] < ALPHA for x in res])
    assert 0.02 <= rate <= 0.08, rate


# ------------------------------------------------------------------------------------------------- power


def test_accuracy_gain_of_two_points_detected_at_n_2000() -> None:
    mu_a, mu_b = 2.0, 2.1776
    gain = _population_accuracy(mu_b) - _population_accuracy(mu_a)
    assert gain == pytest.approx(0.02, abs=1e-3)
    (_, oka, _), (_, okb, _) = _draw(np.random.default_rng(12), 1000, 2000, [mu_a, mu_b], [1.0, 1.0])
    res = [accuracy_delta_test(oka[r], okb[r], ALPHA) for r in range(oka.shape[0])]
    assert all(_agrees(x) for x in res)
    detected = np.mean([x["p_value"] < ALPHA and x["delta"] > 0 for x in res])
    assert detected >= 0.70, detected
    # The interval is an interval for the true gain: it covers it about as often as promised.
    covered = np.mean([x["ci_low"] <= gain <= x["ci_high"] for x in res])
    assert covered >= 0.90, covered


# ---------------------------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("temp", [1.3, 1.05, 1.0], ids=["overconfident", "near-calibrated", "calibrated"])
def test_ece_interval_covers_the_population_ece(temp: float) -> None:
    truth = _population_ece(2.0, temp)
    ((conf, ok, _),) = _draw(np.random.default_rng(13), 120, 2000, [2.0], [temp])
    covered = 0
    for r in range(conf.shape[0]):
        res = calibration_error_ci(conf[r], ok[r], n_boot=400, seed=r)
        assert res["ci_low"] <= res["estimate"] <= res["ci_high"]
        covered += res["ci_low"] <= truth <= res["ci_high"]
    assert covered / conf.shape[0] >= 0.90, (temp, truth, covered / conf.shape[0])


# ------------------------------------------------------------------------------------------ non-inferiority


def test_noninferiority_accuracy_at_the_margin_is_rarely_declared() -> None:
    mu_a, mu_b = 2.0, 1.8344
    gap = _population_accuracy(mu_b) - _population_accuracy(mu_a)
    margin = -gap  # the true gap equals the margin: "replaces it" would be a false claim
    assert margin == pytest.approx(0.02, abs=1e-4)
    (_, oka, _), (_, okb, _) = _draw(np.random.default_rng(14), 2000, 2000, [mu_a, mu_b], [1.0, 1.0])
    res = [noninferiority_accuracy(oka[r], okb[r], margin, ALPHA) for r in range(oka.shape[0])]
    for x in res:
        assert (x["verdict"] == "replaces it") == (x["lower"] > -margin)
    declared = np.mean([x["verdict"] == "replaces it" for x in res])
    assert declared <= 0.05, declared
    # And it is not a test that never says yes: at a true gap of 0 it declares most of the time.
    (_, oka, _), (_, okb, _) = _draw(np.random.default_rng(15), 300, 2000, [mu_a, mu_a], [1.0, 1.0])
    yes = np.mean(
        [noninferiority_accuracy(oka[r], okb[r], margin)["verdict"] == "replaces it" for r in range(300)]
    )
    assert yes >= 0.5, yes


def test_noninferiority_bootstrap_at_the_margin_is_rarely_declared() -> None:
    # Per-example losses (NLL-like, lower is better) whose population means differ by exactly the margin.
    rng = np.random.default_rng(16)
    r, n, margin = 300, 1000, 0.05
    shared = rng.gamma(2.0, 0.25, size=(r, n))
    loss_ref = shared + rng.gamma(1.0, 0.1, size=(r, n))
    loss_new = shared + rng.gamma(1.0, 0.1, size=(r, n)) + margin
    res = [
        noninferiority_bootstrap(np.mean, [loss_ref[i]], [loss_new[i]], margin, False, n_boot=400, seed=i)
        for i in range(r)
    ]
    for x in res:
        assert (x["verdict"] == "replaces it") == (x["lower"] > -margin)
    declared = np.mean([x["verdict"] == "replaces it" for x in res])
    assert declared <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / r), declared
