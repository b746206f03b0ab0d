"""Hand cases and twin checks (scipy, statsmodels, scikit-learn) for :mod:`evalsuite.metrics.inference`
and the OOD-positive FPR@95."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import statsmodels.stats.contingency_tables as sm_ct
import statsmodels.stats.multitest as sm_mt
import statsmodels.stats.proportion as sm_prop
from scipy import stats as st
from sklearn.metrics import roc_curve

from evalsuite.metrics import calibration_bins, ece, ece_adaptive, fpr95, fpr95_ood, fpr_at_ood_tpr, mce
from evalsuite.metrics import stats as S
from evalsuite.metrics.batched import BATCHED, batched_for, fpr95_ood_b
from evalsuite.metrics.inference import (
    accuracy_delta_test,
    benjamini_hochberg,
    calibration_error_ci,
    ece_debiased,
    noninferiority_accuracy,
    noninferiority_bootstrap,
    permutation_test,
    permutation_test_two_sample,
    tango_test,
    value_ci,
)


def _flags(b01: int, b10: int, same_right: int, same_wrong: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.r_[np.zeros(b01), np.ones(b10), np.ones(same_right), np.zeros(same_wrong)].astype(bool)
    b = np.r_[np.ones(b01), np.zeros(b10), np.ones(same_right), np.zeros(same_wrong)].astype(bool)
    return a, b


# ------------------------------------------------------------------------------------------- fpr95_ood


def test_fpr95_ood_hand_case() -> None:
    # 20 OOD scores 1..20: 95% detected needs the 19 largest, t = 2; ID scores >= 2 are flagged.
    ood = np.arange(1.0, 21.0)
    ids = np.array([0.0, 1.0, 2.0, 2.0, 5.0])
    assert fpr95_ood(ids, ood) == pytest.approx(3 / 5)
    # The ID-convention fpr95 is another number on the same data.
    assert fpr95(ids, ood) != fpr95_ood(ids, ood)


@pytest.mark.parametrize("seed", range(6))
def test_fpr_at_ood_tpr_matches_the_first_full_roc_point(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s_id = np.round(rng.normal(0, 1, 97), 1)  # ties on purpose
    s_ood = np.round(rng.normal(1, 1, 53), 1)
    y = np.r_[np.zeros(97), np.ones(53)]
    fpr, tpr, _ = roc_curve(y, np.r_[s_id, s_ood], drop_intermediate=False)
    for level in (0.8, 0.95):
        assert fpr_at_ood_tpr(s_id, s_ood, level) == fpr[np.argmax(tpr >= level)]
    rows_id, rows_ood = np.stack([s_id, s_id[::-1]]), np.stack([s_ood, s_ood[::-1]])
    assert fpr95_ood_b(rows_id, rows_ood).tolist() == [fpr95_ood(s_id, s_ood)] * 2
    assert batched_for(fpr95_ood) is BATCHED["fpr95_ood"]


# ------------------------------------------------------------------------------------------ accuracy


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_accuracy_delta_ci_agrees_with_mcnemar_on_every_small_table(alpha: float) -> None:
    for b01, b10 in itertools.product(range(0, 25), range(0, 25)):
        a, b = _flags(b01, b10, 40, 10)
        res = accuracy_delta_test(a, b, alpha)
        assert res["p_value"] == S.mcnemar_exact(a, b)["p_value"]
        if b01 + b10:
            ref = sm_ct.mcnemar(np.array([[40, b10], [b01, 10]]), exact=True).pvalue
            assert res["p_value"] == pytest.approx(ref, rel=1e-12)
            lo, hi = sm_prop.proportion_confint(b01, b01 + b10, alpha=alpha, method="beta")
            scale = (b01 + b10) / a.shape[0]
            assert res["ci_low"] == pytest.approx(scale * (2 * lo - 1), abs=1e-9)
            assert res["ci_high"] == pytest.approx(scale * (2 * hi - 1), abs=1e-9)
        assert res["ci_low"] <= res["delta"] <= res["ci_high"]
        assert (res["ci_low"] > 0 or res["ci_high"] < 0) == (res["p_value"] < alpha)


def test_tango_hand_case_and_mcnemar_at_zero() -> None:
    a, b = _flags(3, 1, 4, 2)  # n = 10
    # Restricted MLE: 20 q^2 - 2.2 q - 0.09 = 0 -> q = (sqrt(4.84 + 7.2) + 2.2) / 40.
    q = (math.sqrt(4.84 + 7.2) + 2.2) / 40
    z = (3 - 1 - 1) / math.sqrt(10 * (2 * q + 0.1 * 0.9))
    assert tango_test(a, b, delta0=0.1)["z"] == pytest.approx(z, rel=1e-12)
    for b01, b10 in [(30, 12), (5, 0), (17, 17), (0, 9)]:
        a, b = _flags(b01, b10, 300, 50)
        res = tango_test(a, b)
        chi2 = sm_ct.mcnemar(np.array([[300, b10], [b01, 50]]), exact=False, correction=False).statistic
        assert res["z"] ** 2 == pytest.approx(chi2, rel=1e-12)
        assert (res["ci_low"] > 0 or res["ci_high"] < 0) == (res["p_value"] < 0.05)
        # The endpoints are where the score statistic crosses the critical value.
        zc = st.norm.isf(0.025)
        for end, target in ((res["ci_low"], zc), (res["ci_high"], -zc)):
            if -1 < end < 1:
                assert tango_test(a, b, delta0=end)["z"] == pytest.approx(target, abs=1e-6)


def test_noninferiority_accuracy_verdicts() -> None:
    a, b = _flags(20, 22, 900, 58)  # delta = -0.002 on n = 1000
    res = noninferiority_accuracy(a, b, margin=0.05)
    assert res["verdict"] == "replaces it" and res["lower"] > -0.05
    assert res["smallest_margin"] == pytest.approx(-res["lower"])
    assert noninferiority_accuracy(a, b, margin=0.001)["verdict"] == "inconclusive"
    a, b = _flags(5, 120, 800, 75)  # delta = -0.115
    assert noninferiority_accuracy(a, b, margin=0.02)["verdict"] == "worse"
    with pytest.raises(ValueError, match=r"margin must lie in \[0, 1\)"):
        noninferiority_accuracy(a, b, margin=-0.1)


# ---------------------------------------------------------------------------------------- permutation


def test_permutation_p_matches_full_enumeration() -> None:
    la, lb = np.array([0.1, 0.9, 0.4, 0.3, 1.2]), np.array([0.5, 1.0, 0.2, 0.9, 1.1])
    d = lb - la
    delta = d.mean()
    exact = np.mean(
        [abs(np.mean(np.array(s) * d)) >= abs(delta) - 1e-15 for s in itertools.product([1, -1], repeat=5)]
    )
    res = permutation_test(np.mean, [la], [lb], n_perm=40_000, max_perm=40_000, seed=3)
    assert res["p_value"] == pytest.approx(exact, abs=0.01)
    assert res["delta"] == pytest.approx(delta)
    sp = st.permutation_test(
        (la, lb), lambda x, y: np.mean(y - x), permutation_type="samples", n_resamples=np.inf
    )
    assert sp.pvalue == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize("seed", range(25))
def test_permutation_ci_agrees_with_p(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 200
    conf = rng.uniform(0.3, 1.0, n)
    ok_a = rng.random(n) < conf
    conf_b = np.clip(conf + rng.normal(0.02 * (seed % 5), 0.05, n), 0, 1)
    ok_b = rng.random(n) < conf
    res = permutation_test(ece, [conf, ok_a], [conf_b, ok_b], n_perm=300, max_perm=1200, seed=seed)
    assert (res["ci_low"] > 0 or res["ci_high"] < 0) == (res["p_value"] < 0.05)
    assert res["ci_low"] <= res["delta"] <= res["ci_high"]
    assert res["stat_a"] == ece(conf, ok_a) and res["stat_b"] == ece(conf_b, ok_b)


def test_permutation_batched_and_loop_paths_agree_and_are_seeded() -> None:
    rng = np.random.default_rng(1)
    conf, conf_b = rng.uniform(0.2, 1, 150), rng.uniform(0.2, 1, 150)
    ok_a, ok_b = rng.random(150) < conf, rng.random(150) < conf_b
    kw = {"n_perm": 300, "max_perm": 300, "seed": 5}
    fast = permutation_test(ece_adaptive, [conf, ok_a], [conf_b, ok_b], **kw)
    slow = permutation_test(lambda c, o: ece_adaptive(c, o), [conf, ok_a], [conf_b, ok_b], **kw)
    assert fast == slow
    assert permutation_test(ece_adaptive, [conf, ok_a], [conf_b, ok_b], **kw) == fast


def test_permutation_adds_permutations_so_the_floor_does_not_decide() -> None:
    rng = np.random.default_rng(2)
    la = rng.normal(0, 1, 400)
    lb = la + 0.5 + rng.normal(0, 0.5, 400)  # huge effect: true p is essentially 0
    res = permutation_test(np.mean, [la], [lb], thresholds=[0.05 / 50], n_perm=200, max_perm=64_000)
    assert res["resolved"] and res["n_perm"] > 200
    assert res["p_value"] < 0.05 / 50
    fixed = permutation_test(np.mean, [la], [lb], n_perm=200, max_perm=200)
    assert fixed["p_value"] == 1 / 201 > 0.05 / 50


def test_permutation_two_sample_identical_models_give_p_one() -> None:
    rng = np.random.default_rng(4)
    s_id, s_ood = rng.normal(0, 1, 80), rng.normal(1, 1, 40)
    res = permutation_test_two_sample(fpr95_ood, [s_id], [s_ood], [s_id], [s_ood], n_perm=100)
    assert res["p_value"] == 1.0 and res["delta"] == 0.0
    with pytest.raises(ValueError, match="A and B must share examples"):
        permutation_test_two_sample(fpr95_ood, [s_id], [s_ood], [s_id[:-1]], [s_ood])
    with pytest.raises(ValueError, match=r"alpha must lie in \(0, 1\)"):
        permutation_test(np.mean, [s_id], [s_id], alpha=1.5)


# ------------------------------------------------------------------------------------- value intervals


def test_value_ci_percentile_is_the_existing_bootstrap_and_basic_reflects_it() -> None:
    rng = np.random.default_rng(6)
    conf = rng.uniform(0.4, 1, 500)
    ok = rng.random(500) < conf
    perc = value_ci(ece, [conf, ok], "percentile", n_boot=300, seed=9)
    assert (perc["ci_low"], perc["ci_high"]) == S.bootstrap_ci(ece, [conf, ok], n_boot=300, seed=9)
    basic = value_ci(ece, [conf, ok], "basic", n_boot=300, seed=9)
    t = ece(conf, ok)
    assert basic["ci_low"] == pytest.approx(2 * t - perc["ci_high"])
    assert basic["ci_high"] == pytest.approx(2 * t - perc["ci_low"])
    assert basic["bias"] > 0  # the plug-in ECE of a calibrated model is biased upward
    clipped = value_ci(ece, [conf, ok], "basic", n_boot=300, seed=9, bounds=(0.0, 1.0))
    assert clipped["ci_low"] == max(0.0, basic["ci_low"])


def test_value_ci_bca_close_to_scipy() -> None:
    x = np.random.default_rng(8).exponential(1.0, 300)
    ours = value_ci(np.mean, [x], "bca", n_boot=20_000, seed=1)
    ref = st.bootstrap((x,), np.mean, method="BCa", n_resamples=20_000, random_state=1).confidence_interval
    assert ours["ci_low"] == pytest.approx(ref.low, abs=0.01)
    assert ours["ci_high"] == pytest.approx(ref.high, abs=0.01)


def test_ece_debiased_closed_form_matches_kumar_resampling() -> None:
    rng = np.random.default_rng(10)
    conf = rng.uniform(0.5, 1, 400)
    ok = rng.random(400) < conf
    bins = calibration_bins(conf, ok)
    keep = bins.counts > 0
    w, acc, cm, cnt = bins.counts[keep] / 400, bins.accuracy[keep], bins.confidence[keep], bins.counts[keep]
    draws = rng.normal(acc, np.sqrt(acc * (1 - acc) / cnt), size=(200_000, keep.sum()))
    mc = 2 * ece(conf, ok) - np.mean(np.sum(w * np.abs(draws - cm), axis=1))
    assert ece_debiased(conf, ok) == pytest.approx(mc, abs=2e-4)
    assert ece_debiased(conf, ok) < ece(conf, ok)
    # Perfectly calibrated bins with no spread in accuracy: nothing to remove.
    assert ece_debiased(np.ones(10), np.ones(10, dtype=bool)) == 0.0


def test_calibration_error_ci_contains_the_plugin_and_matches_it() -> None:
    rng = np.random.default_rng(12)
    conf = rng.uniform(0.5, 1, 800)
    ok = rng.random(800) < conf - 0.05
    for kind, fn in (("ece", ece), ("mce", mce)):
        res = calibration_error_ci(conf, ok, kind=kind, n_boot=300)
        assert res["estimate"] == fn(conf, ok)
        assert 0.0 <= res["ci_low"] <= res["estimate"] <= res["ci_high"] <= 1.0
        assert res["half_width"] > 0
    wider = calibration_error_ci(conf, ok, level=0.99, n_boot=300)
    assert wider["half_width"] > calibration_error_ci(conf, ok, level=0.9, n_boot=300)["half_width"]
    with pytest.raises(ValueError, match="unknown kind 'brier'; expected 'ece' or 'mce'"):
        calibration_error_ci(conf, ok, kind="brier")


# ---------------------------------------------------------------------------------------- multiplicity


def test_benjamini_hochberg_matches_statsmodels() -> None:
    rng = np.random.default_rng(13)
    for m in (1, 2, 7, 50):
        p = np.r_[rng.uniform(0, 0.05, m // 2), rng.uniform(0, 1, m - m // 2)]
        p[0] = p[-1]  # a tie
        assert benjamini_hochberg(p) == pytest.approx(sm_mt.multipletests(p, method="fdr_bh")[1], abs=1e-15)
    out = benjamini_hochberg([0.01, math.nan, 0.04, 0.03])
    assert math.isnan(out[1])
    assert out[0] == pytest.approx(0.03) and out[2] == pytest.approx(0.04) and out[3] == pytest.approx(0.04)
    assert benjamini_hochberg([]) == []
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\] \(or be NaN\)"):
        benjamini_hochberg([1.2])


# ------------------------------------------------------------------------------------ bootstrap NI


def test_noninferiority_bootstrap_bounds_match_the_verdict() -> None:
    rng = np.random.default_rng(14)
    ref = rng.gamma(2.0, 0.25, 500)
    new = ref + rng.normal(0.01, 0.05, 500)  # slightly worse loss
    for margin in (0.0, 0.005, 0.01, 0.02, 0.05):
        res = noninferiority_bootstrap(np.mean, [ref], [new], margin, higher_is_better=False, n_boot=500)
        assert (res["verdict"] == "replaces it") == (res["lower"] > -margin)
        assert (res["verdict"] == "worse") == (res["upper"] < -margin and res["lower"] <= -margin)
        assert res["gain"] == pytest.approx(-(new.mean() - ref.mean()))
    assert noninferiority_bootstrap(np.mean, [ref], [new], 0.05, False)["verdict"] == "replaces it"
    assert noninferiority_bootstrap(np.mean, [ref], [new + 0.1], 0.02, False)["verdict"] == "worse"
