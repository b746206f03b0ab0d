"""Paired statistics: twin tests against statsmodels / scipy / scikit-learn, a slow DeLong reference, and
behavioural checks of the bootstrap (determinism, coverage, planted and null differences)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.stats.contingency_tables as sm_ct
import statsmodels.stats.multitest as sm_mt
import statsmodels.stats.proportion as sm_prop
from scipy import stats as st
from sklearn.metrics import roc_auc_score

from evalsuite.metrics import auroc, ece, nll, softmax, top_label
from evalsuite.metrics.stats import (
    CONVENTIONS,
    bootstrap_ci,
    bootstrap_ci_two_sample,
    delong_test,
    holm,
    mcnemar_exact,
    paired_bootstrap,
    paired_bootstrap_two_sample,
    seed_level_test,
    verdict,
    wilson_ci,
)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x))


# ------------------------------------------------------------------------------------------------- Wilson


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (37, 120), (9871, 10000), (1, 1)])
def test_wilson_matches_statsmodels(k: int, n: int, level: float) -> None:
    lo, hi = wilson_ci(k, n, level)
    ref_lo, ref_hi = sm_prop.proportion_confint(k, n, alpha=1 - level, method="wilson")
    assert lo == pytest.approx(ref_lo, abs=1e-12)
    assert hi == pytest.approx(ref_hi, abs=1e-12)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_hand_case_and_edges() -> None:
    # 8/10 at z = 1.96: center = (0.8 + 0.19208) / 1.38416, half = 1.96 / 1.38416 * sqrt(0.016 + 0.009604).
    z = st.norm.ppf(0.975)
    center = (0.8 + z * z / 20) / (1 + z * z / 10)
    half = z / (1 + z * z / 10) * math.sqrt(0.8 * 0.2 / 10 + z * z / 400)
    lo, hi = wilson_ci(8, 10)
    assert (lo, hi) == pytest.approx((center - half, center + half), abs=1e-15)
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # the textbook numbers
    assert all(math.isnan(v) for v in wilson_ci(0, 0))
    with pytest.raises(ValueError, match="need integers 0 <= successes <= n"):
        wilson_ci(11, 10)
    with pytest.raises(ValueError, match=r"level must lie in \(0, 1\)"):
        wilson_ci(1, 10, level=1.0)


# ------------------------------------------------------------------------------------------------ McNemar


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mcnemar_matches_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60 + 40 * seed
    a = rng.random(n) < 0.7
    # B flips a few of A's answers, more often towards correct for odd seeds.
    flip = rng.random(n) < 0.15
    b = np.where(flip, rng.random(n) < (0.8 if seed % 2 else 0.4), a)
    res = mcnemar_exact(a, b)
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    assert res["b10"] == table[0][1] and res["b01"] == table[1][0]
    assert res["p_value"] == pytest.approx(sm_ct.mcnemar(table, exact=True).pvalue, abs=1e-12)


def test_mcnemar_hand_cases() -> None:
    # b01 = 0, b10 = 5: p = 2 * 0.5^5.
    a = np.array([1, 1, 1, 1, 1, 0, 1])
    b = np.array([0, 0, 0, 0, 0, 0, 1])
    res = mcnemar_exact(a, b)
    assert (res["b01"], res["b10"]) == (0, 5)
    assert res["p_value"] == pytest.approx(2 * 0.5**5, abs=1e-15)
    same = mcnemar_exact(a.astype(bool), a.astype(bool))
    assert same == {"p_value": 1.0, "b01": 0, "b10": 0, "n": 7}
    # Balanced discordance caps at 1.
    assert mcnemar_exact([1, 0], [0, 1])["p_value"] == 1.0
    with pytest.raises(ValueError, match="correct_a must be boolean or 0/1"):
        mcnemar_exact([1, 2], [0, 1])


# ------------------------------------------------------------------------------------------------- DeLong


def _slow_delong(neg: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """O(N*M) DeLong from structural components: neg, pos [2, n], [2, m] -> (aucs [2], cov [2, 2])."""
    # psi[k, i, j] = 1 if OOD i beats ID j, 1/2 if tied, for model k.
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
    v10 = psi.mean(axis=2)  # per OOD example
    v01 = psi.mean(axis=1)  # per ID example
    aucs = psi.mean(axis=(1, 2))
    m, n = pos.shape[1], neg.shape[1]
    s10 = (v10 - aucs[:, None]) @ (v10 - aucs[:, None]).T / (m - 1)
    s01 = (v01 - aucs[:, None]) @ (v01 - aucs[:, None]).T / (n - 1)
    return aucs, s10 / m + s01 / n


def _correlated_scores(seed: int, ties: bool) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n_id, n_ood = 150 + 11 * seed, 90 + 5 * seed
    base_id, base_ood = rng.normal(0, 1, n_id), rng.normal(1.0, 1, n_ood)
    # B is A plus noise: correlated scores on the same examples, B slightly worse.
    id_a, ood_a = base_id + 0.3 * rng.normal(size=n_id), base_ood + 0.3 * rng.normal(size=n_ood)
    id_b, ood_b = base_id + 0.8 * rng.normal(size=n_id), base_ood + 0.8 * rng.normal(size=n_ood)
    if ties:
        id_a, ood_a, id_b, ood_b = (np.round(x * 2) / 2 for x in (id_a, ood_a, id_b, ood_b))
    return id_a, ood_a, id_b, ood_b


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_delong_matches_slow_reference(seed: int, ties: bool) -> None:
    id_a, ood_a, id_b, ood_b = _correlated_scores(seed, ties)
    res = delong_test(id_a, ood_a, id_b, ood_b)
    aucs, cov = _slow_delong(np.stack([id_a, id_b]), np.stack([ood_a, ood_b]))
    se = math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert res["auc_a"] == auroc(id_a, ood_a)  # exactly the package's AUROC
    assert res["auc_b"] == auroc(id_b, ood_b)
    assert (res["auc_a"], res["auc_b"]) == pytest.approx(tuple(aucs), abs=1e-12)
    y = np.r_[np.zeros(len(id_a)), np.ones(len(ood_a))]
    assert res["auc_a"] == pytest.approx(roc_auc_score(y, np.r_[id_a, ood_a]), abs=1e-12)
    assert res["auc_b"] == pytest.approx(roc_auc_score(y, np.r_[id_b, ood_b]), abs=1e-12)
    assert res["delta"] == res["auc_b"] - res["auc_a"]
    assert res["se"] == pytest.approx(se, rel=1e-9)
    z = res["delta"] / se
    assert res["z"] == pytest.approx(z, rel=1e-9)
    assert res["p_value"] == pytest.approx(2 * st.norm.sf(abs(z)), rel=1e-7)
    zq = st.norm.ppf(0.975)
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((res["delta"] - zq * se, res["delta"] + zq * se))


def test_delong_identical_and_planted() -> None:
    id_a, ood_a, _, _ = _correlated_scores(3, ties=True)
    same = delong_test(id_a, ood_a, id_a, ood_a)
    assert same["delta"] == 0.0 and same["se"] == 0.0 and same["p_value"] == 1.0
    # A near-useless detector against a good one on the same examples: clearly worse.
    rng = np.random.default_rng(0)
    bad = delong_test(id_a, ood_a, rng.normal(size=len(id_a)), rng.normal(size=len(ood_a)))
    assert bad["delta"] < 0 and bad["p_value"] < 1e-3 and bad["ci_high"] < 0
    with pytest.raises(ValueError, match="all input arrays must have the same shape"):
        delong_test(id_a, ood_a, id_a[:-1], ood_a)


# --------------------------------------------------------------------------------------------------- Holm


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holm_matches_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.random(12) ** 3  # several small ones, some ties after rounding
    p = np.round(p, 3)
    assert holm(p) == pytest.approx(list(sm_mt.multipletests(p, method="holm")[1]), abs=1e-15)


def test_holm_nan_passthrough_and_edges() -> None:
    p = [0.01, math.nan, 0.04, 0.03, math.nan]
    out = holm(p)
    ref = sm_mt.multipletests([0.01, 0.04, 0.03], method="holm")[1]
    assert math.isnan(out[1]) and math.isnan(out[4])
    assert [out[0], out[2], out[3]] == pytest.approx(list(ref), abs=1e-15)
    assert out[0] == pytest.approx(0.03)  # 3 tests counted, not 5
    assert holm([]) == []
    assert all(math.isnan(v) for v in holm([math.nan, math.nan]))
    assert holm([0.9, 0.8]) == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\] \(or be NaN\)"):
        holm([1.5])


def test_verdict() -> None:
    assert verdict(0.02, 0.01, higher_is_better=True) == "better"
    assert verdict(0.02, 0.01, higher_is_better=False) == "worse"
    assert verdict(-0.02, 0.01, higher_is_better=False) == "better"
    assert verdict(-0.02, 0.01, higher_is_better=True) == "worse"
    assert verdict(0.02, 0.05, higher_is_better=True) == "no significant difference"  # strict p < alpha
    assert verdict(0.02, 0.2, higher_is_better=True, alpha=0.25) == "better"
    assert verdict(math.nan, 0.01, True) == "n/a"
    assert verdict(0.02, math.nan, True) == "n/a"


# ---------------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_deterministic_and_seeded() -> None:
    x = np.random.default_rng(0).normal(size=300)
    ci = bootstrap_ci(_mean, [x], n_boot=300, seed=5)
    assert ci == bootstrap_ci(_mean, [x], n_boot=300, seed=5)
    assert ci != bootstrap_ci(_mean, [x], n_boot=300, seed=6)


def test_bootstrap_batched_equals_loop() -> None:
    x = np.random.default_rng(1).normal(size=257)
    loop = bootstrap_ci(_mean, [x], n_boot=200, seed=3)
    batched = bootstrap_ci(lambda v: v.mean(axis=1), [x], n_boot=200, seed=3, batched=True)
    assert batched == pytest.approx(loop, abs=1e-12)
    with pytest.raises(ValueError, match="batched"):
        bootstrap_ci(lambda v: v.mean(), [x], n_boot=10, batched=True)


def test_bootstrap_coverage_sanity() -> None:
    # Percentile CI of the mean of N(0, 1) samples: covers 0 ~95% of the time, width ~ 2 * 1.96 / sqrt(N).
    n, trials = 400, 60
    covered, widths = 0, []
    for seed in range(trials):
        x = np.random.default_rng(100 + seed).normal(size=n)
        lo, hi = bootstrap_ci(lambda v: v.mean(axis=1), [x], n_boot=1000, seed=seed, batched=True)
        covered += lo < 0.0 < hi
        widths.append(hi - lo)
    assert covered >= 0.85 * trials
    assert np.median(widths) == pytest.approx(2 * 1.96 / math.sqrt(n), rel=0.15)
    x = np.random.default_rng(100).normal(size=n)
    lo, hi = bootstrap_ci(_mean, [x], n_boot=1000)
    assert lo < 0.0 < hi and hi - lo == pytest.approx(2 * 1.96 / math.sqrt(n), rel=0.15)


def test_bootstrap_rejects_bare_array_and_mismatch() -> None:
    x = np.zeros(5)
    with pytest.raises(TypeError):
        bootstrap_ci(_mean, x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"arrays\[1\] must have first dimension 5"):
        bootstrap_ci(lambda a, b: 0.0, [x, np.zeros(4)])


def test_bootstrap_with_package_metrics() -> None:
    rng = np.random.default_rng(4)
    n, k = 400, 5
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[labels]
    lo, hi = bootstrap_ci(nll, [logits, labels], n_boot=200)
    assert lo < nll(logits, labels) < hi
    conf, correct = top_label(softmax(logits), labels)
    lo, hi = bootstrap_ci(ece, [conf, correct], n_boot=200)
    # ECE is biased upward under resampling, so only ask for a sane interval around the data.
    assert 0.0 <= lo < hi <= 1.0 and lo < ece(conf, correct) + 0.02
    s_id, s_ood = rng.normal(size=300), rng.normal(1.0, 1.0, size=200)
    lo, hi = bootstrap_ci_two_sample(auroc, [s_id], [s_ood], n_boot=300)
    a = auroc(s_id, s_ood)
    assert lo < a < hi
    # A normal-theory check of the two-sample width: DeLong's single-AUC se.
    se = math.sqrt(_slow_delong(np.stack([s_id, s_id]), np.stack([s_ood, s_ood]))[1][0, 0])
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_two_sample_resamples_groups_independently() -> None:
    # The statistic sees each group's resampled size: ID and OOD keep their own N.
    seen: list[tuple[int, int]] = []

    def stat(i: np.ndarray, o: np.ndarray) -> float:
        seen.append((len(i), len(o)))
        return float(o.mean() - i.mean())

    bootstrap_ci_two_sample(stat, [np.arange(7.0)], [np.arange(3.0)], n_boot=20)
    assert set(seen) == {(7, 3)}


# --------------------------------------------------------------------------------------- paired bootstrap


def _acc(correct: np.ndarray) -> float:
    return float(np.mean(correct))


def test_paired_bootstrap_identical_is_null() -> None:
    correct = np.random.default_rng(0).random(500) < 0.8
    res = paired_bootstrap(_acc, [correct], [correct.copy()], n_boot=300)
    assert res["delta"] == 0.0 and res["p_value"] == 1.0
    assert res["ci_low"] == 0.0 == res["ci_high"]


def test_paired_bootstrap_detects_planted_difference() -> None:
    rng = np.random.default_rng(1)
    n = 1000
    a = rng.random(n) < 0.80
    b = a.copy()
    # B fixes 60 of A's errors and breaks 10 of its successes: +5 points, paired.
    b[rng.choice(np.flatnonzero(~a), 60, replace=False)] = True
    b[rng.choice(np.flatnonzero(a), 10, replace=False)] = False
    res = paired_bootstrap(_acc, [a], [b], n_boot=1000)
    assert res["delta"] == pytest.approx(0.05)
    assert res["p_value"] < 0.01
    assert res["p_value_percentile"] == pytest.approx(2 / 1001)  # no replicate crossed 0: the +1 floor
    # the z-test p has no such floor, so it can survive Holm over many metrics
    assert res["p_value"] < 2 / 1001
    assert res["ci_low"] < res["delta"] < res["ci_high"] and res["ci_low"] > 0
    assert (res["stat_a"], res["stat_b"]) == (_acc(a), _acc(b))
    # McNemar agrees.
    assert mcnemar_exact(a, b)["p_value"] < 1e-6


def test_paired_bootstrap_no_difference_in_noise() -> None:
    # Two models with the same accuracy but independent errors: no significant difference.
    rng = np.random.default_rng(2)
    a = rng.random(600) < 0.8
    b = rng.random(600) < 0.8
    res = paired_bootstrap(_acc, [a], [b], n_boot=500, seed=1)
    assert res["ci_low"] <= res["delta"] <= res["ci_high"]
    assert (res["p_value"] > 0.05) == (res["ci_low"] < 0 < res["ci_high"])


def test_paired_bootstrap_is_paired() -> None:
    # B = A + small constant on every example: unpaired noise would swamp it, pairing does not.
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    res = paired_bootstrap(_mean, [x], [x + 0.01], n_boot=200)
    assert res["ci_low"] == pytest.approx(0.01) and res["ci_high"] == pytest.approx(0.01)
    assert res["p_value_percentile"] == pytest.approx(2 / 201)
    assert res["p_value"] < 1e-12


def test_paired_bootstrap_nll_logits() -> None:
    rng = np.random.default_rng(5)
    n, k = 300, 4
    labels = rng.integers(0, k, n)
    logits_a = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels]
    logits_b = 2.5 * logits_a  # overconfident copy: same accuracy, different NLL
    res = paired_bootstrap(nll, [logits_a, labels], [logits_b, labels], n_boot=200, seed=2)
    assert res["delta"] == pytest.approx(nll(logits_b, labels) - nll(logits_a, labels))
    assert res["ci_low"] < res["delta"] < res["ci_high"]
    again = paired_bootstrap(nll, [logits_a, labels], [logits_b, labels], n_boot=200, seed=2)
    assert again == res
    with pytest.raises(ValueError, match="A and B must be evaluated on the same examples"):
        paired_bootstrap(nll, [logits_a, labels], [logits_b[:-1], labels[:-1]])


def test_paired_bootstrap_two_sample_auroc() -> None:
    id_a, ood_a, id_b, ood_b = _correlated_scores(0, ties=False)
    res = paired_bootstrap_two_sample(auroc, [id_a], [ood_a], [id_b], [ood_b], n_boot=400)
    dl = delong_test(id_a, ood_a, id_b, ood_b)
    assert res["delta"] == pytest.approx(dl["delta"], abs=1e-15)
    assert res["ci_low"] < res["delta"] < res["ci_high"]
    # The bootstrap and DeLong estimate the same sampling spread of the delta.
    assert res["ci_high"] - res["ci_low"] == pytest.approx(dl["ci_high"] - dl["ci_low"], rel=0.25)
    same = paired_bootstrap_two_sample(auroc, [id_a], [ood_a], [id_a], [ood_a], n_boot=50)
    assert same["delta"] == 0.0 and same["p_value"] == 1.0


# ------------------------------------------------------------------------------------------- seed level


def test_seed_level_welch_and_paired_match_scipy() -> None:
    a = [0.91, 0.92, 0.905, 0.915]
    b = [0.90, 0.915, 0.895, 0.90]
    w = seed_level_test(a, b, paired=False)
    assert w["test"] == "welch t-test"
    assert w["p_value"] == pytest.approx(st.ttest_ind(b, a, equal_var=False).pvalue, rel=1e-12)
    assert w["std_a"] == pytest.approx(np.std(a, ddof=1))
    assert w["delta"] == pytest.approx(np.mean(b) - np.mean(a))
    p = seed_level_test(a, b, paired=True)
    assert p["test"] == "paired t-test"
    assert p["p_value"] == pytest.approx(st.ttest_rel(b, a).pvalue, rel=1e-12)
    assert p["p_value"] < w["p_value"]  # the seeds co-vary, pairing helps
    uneven = seed_level_test(a, b[:3], paired=True)
    assert uneven["test"].startswith("welch")
    assert uneven["p_value"] == pytest.approx(st.ttest_ind(b[:3], a, equal_var=False).pvalue, rel=1e-12)


def test_seed_level_too_few() -> None:
    res = seed_level_test([0.9], [0.8, 0.85], paired=False)
    assert math.isnan(res["p_value"]) and math.isnan(res["std_a"]) and "fewer than 2" in res["test"]
    assert res["mean_a"] == 0.9 and res["delta"] == pytest.approx(-0.075)


def test_seed_level_zero_spread_is_not_significant_noise() -> None:
    # Differences equal up to float rounding: scipy would report p ~ 1e-29 from ulp noise.
    a, b = [0.91, 0.92, 0.93], [0.92, 0.93, 0.94]
    assert st.ttest_rel(b, a).pvalue < 1e-10
    res = seed_level_test(a, b, paired=True)
    assert math.isnan(res["p_value"]) and "degenerate" in res["test"]
    same = seed_level_test(a, a, paired=True)
    assert same["p_value"] == 1.0 and same["delta"] == 0.0
    assert seed_level_test([0.5, 0.5], [0.5, 0.5], paired=False)["p_value"] == 1.0
    assert math.isnan(seed_level_test([0.5, 0.5], [0.6, 0.6], paired=False)["p_value"])


def test_conventions_are_documented() -> None:
    for key in ("delta", "bootstrap", "bootstrap_p", "mcnemar", "delong", "holm", "seed_level"):
        assert isinstance(CONVENTIONS[key], str) and CONVENTIONS[key]


def test_bootstrap_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny memory budgets force many index chunks and batched sub-batches; every replicate is still filled
    # once, and the loop and batched paths see the same index stream.
    import evalsuite.metrics.stats as stats_mod

    x = np.random.default_rng(7).normal(size=101)
    calls: list[int] = []

    def mean_loop(v: np.ndarray) -> float:
        calls.append(1)
        return float(v.mean())

    monkeypatch.setattr(stats_mod, "_MAX_INDEX_ELEMENTS", 3 * 101 + 5)
    monkeypatch.setattr(stats_mod, "_MAX_GATHER_ELEMENTS", 2 * 101)
    loop = bootstrap_ci(mean_loop, [x], n_boot=50, seed=1)
    assert len(calls) == 50
    batched = bootstrap_ci(lambda v: v.mean(axis=1), [x], n_boot=50, seed=1, batched=True)
    assert batched == pytest.approx(loop, abs=1e-12)
    res = paired_bootstrap(_mean, [x], [x + 0.5], n_boot=50, seed=1)
    assert res["ci_low"] == pytest.approx(0.5) and res["ci_high"] == pytest.approx(0.5)
