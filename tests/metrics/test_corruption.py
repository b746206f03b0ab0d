"""Corruption aggregates: exact hand-computed cases, the paper's equations written out, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalsuite.metrics.corruption import (
    CONVENTIONS,
    as_table,
    corruption_errors,
    corruption_means,
    corruption_metrics,
    grid_mean,
    mean_corruption_accuracy,
    mean_corruption_error,
    relative_corruption_errors,
    relative_mean_corruption_error,
    severity_means,
)

# Accuracies chosen so every error and sum is exact by hand (see the numbers in the test).
MODEL = {("fog", 1): 0.9, ("fog", 2): 0.8, ("snow", 1): 0.7, ("snow", 2): 0.5}
REF = {("fog", 1): 0.8, ("fog", 2): 0.6, ("snow", 1): 0.6, ("snow", 2): 0.4}


def test_hand_computed_case() -> None:
    # model errors: fog 0.1 + 0.2 = 0.3, snow 0.3 + 0.5 = 0.8; reference: fog 0.2 + 0.4 = 0.6, snow 1.0
    assert corruption_errors(MODEL, REF) == pytest.approx({"fog": 0.5, "snow": 0.8}, abs=1e-12)
    assert mean_corruption_error(MODEL, REF) == pytest.approx(0.65, abs=1e-12)
    # clean errors 0.05 (model) and 0.1 (reference):
    # fog (0.05 + 0.15) / (0.1 + 0.3) = 0.5, snow (0.25 + 0.45) / (0.3 + 0.5) = 0.875
    rel = relative_corruption_errors(MODEL, 0.95, REF, 0.9)
    assert rel == pytest.approx({"fog": 0.5, "snow": 0.875}, abs=1e-12)
    assert relative_mean_corruption_error(MODEL, 0.95, REF, 0.9) == pytest.approx(0.6875, abs=1e-12)
    assert mean_corruption_accuracy(MODEL) == pytest.approx(0.725, abs=1e-12)
    assert severity_means(MODEL) == pytest.approx({1: 0.8, 2: 0.65}, abs=1e-12)
    assert corruption_means(MODEL) == pytest.approx({"fog": 0.85, "snow": 0.6}, abs=1e-12)
    assert grid_mean({("fog", 1): 0.02, ("fog", 3): 0.04}) == pytest.approx(0.03)


def test_the_reference_scores_one_and_order_does_not_matter() -> None:
    assert mean_corruption_error(REF, REF) == 1.0
    assert relative_mean_corruption_error(REF, 0.9, REF, 0.9) == 1.0
    shuffled = dict(reversed(list(REF.items())))
    assert corruption_errors(MODEL, shuffled) == corruption_errors(MODEL, REF)


def _paper(
    err: dict[str, list[float]], e_clean: float, ref: dict[str, list[float]], r_clean: float
) -> tuple[float, float]:
    """Hendrycks & Dietterich (2019), section 3, written out with explicit sums over s = 1..5."""
    ce, rel = [], []
    for c in err:
        num = den = rnum = rden = 0.0
        for s in range(5):
            num += err[c][s]
            den += ref[c][s]
            rnum += err[c][s] - e_clean
            rden += ref[c][s] - r_clean
        ce.append(num / den)
        rel.append(rnum / rden)
    return sum(ce) / len(ce), sum(rel) / len(rel)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_papers_equations_on_random_tables(seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = ["gaussian_noise", "motion_blur", "fog", "pixelate"]
    # errors grow with severity and stay above the clean error, as on real corrupted sets
    err = {c: sorted(rng.uniform(0.2, 0.9, 5).tolist()) for c in names}
    ref = {c: sorted(rng.uniform(0.2, 0.9, 5).tolist()) for c in names}
    acc = {(c, s + 1): 1.0 - err[c][s] for c in names for s in range(5)}
    ref_acc = {(c, s + 1): 1.0 - ref[c][s] for c in names for s in range(5)}
    want_mce, want_rel = _paper(err, 0.1, ref, 0.15)
    assert mean_corruption_error(acc, ref_acc) == pytest.approx(want_mce, rel=1e-12)
    assert relative_mean_corruption_error(acc, 0.9, ref_acc, 0.85) == pytest.approx(want_rel, rel=1e-12)


# AlexNet's ImageNet-C errors averaged over severities, the normalizer hendrycks/robustness uses
# (ALEXNET_ERR, in the paper's corruption order).
ALEXNET_ERR = [0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360, 0.866816]
ALEXNET_ERR += [0.826572, 0.819324, 0.564592, 0.853204, 0.646056, 0.717840, 0.606500]
CORRUPTIONS = [
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression",
]  # fmt: skip


def test_agrees_with_the_alexnet_normalization_of_the_reference_code() -> None:
    """The reference repo divides a model's mean error over severities by AlexNet's: same CE here when
    AlexNet's grid holds its mean error at every severity (CE is a ratio of sums over equal counts)."""
    rng = np.random.default_rng(5)
    model_err = {c: rng.uniform(0.3, 0.8, 5) for c in CORRUPTIONS}
    acc = {(c, s + 1): 1.0 - float(model_err[c][s]) for c in CORRUPTIONS for s in range(5)}
    alex = {(c, s + 1): 1.0 - e for c, e in zip(CORRUPTIONS, ALEXNET_ERR) for s in range(5)}
    repo_style = [float(np.mean(model_err[c])) / e for c, e in zip(CORRUPTIONS, ALEXNET_ERR)]
    assert mean_corruption_error(acc, alex) == pytest.approx(sum(repo_style) / 15, rel=1e-12)
    clean, alex_clean = 0.2, 0.43  # any clean errors below the corrupted ones do
    repo_rel = [
        (float(np.mean(model_err[c])) - clean) / (e - alex_clean) for c, e in zip(CORRUPTIONS, ALEXNET_ERR)
    ]
    got = relative_mean_corruption_error(acc, 1 - clean, alex, 1 - alex_clean)
    assert got == pytest.approx(sum(repo_rel) / 15, rel=1e-12)


def test_undefined_ratios_are_nan() -> None:
    perfect = dict.fromkeys(REF, 1.0)
    assert all(math.isnan(v) for v in corruption_errors(MODEL, perfect).values())
    assert math.isnan(mean_corruption_error(MODEL, perfect))
    # the reference loses no accuracy under fog: relative CE for fog is undefined, snow is fine
    ref = {("fog", 1): 0.9, ("fog", 2): 0.9, ("snow", 1): 0.6, ("snow", 2): 0.4}
    rel = relative_corruption_errors(MODEL, 0.95, ref, 0.9)
    assert math.isnan(rel["fog"]) and rel["snow"] == pytest.approx(0.875)
    assert math.isnan(relative_mean_corruption_error(MODEL, 0.95, ref, 0.9))


@pytest.mark.parametrize(
    ("grid", "match"),
    [
        ({}, "empty"),
        ({("fog", 1): 0.5, ("fog", 2): 0.5, ("snow", 1): 0.5}, "not rectangular"),
        ({("fog", 0): 0.5}, "severity"),
        ({("fog", True): 0.5}, "severity"),
        ({("Fog", 1): 0.5}, "bad corruption name"),
        ({("mean", 1): 0.5}, "bad corruption name"),
        ({("fog", 1): float("nan")}, "nan"),
        ({"fog": 0.5}, "keys"),
    ],
)
def test_bad_grids_are_refused(grid: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        as_table(grid)


def test_bad_accuracies_and_mismatched_grids_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mean_corruption_accuracy({("fog", 1): 1.5})
    with pytest.raises(ValueError, match="differ"):
        corruption_errors(MODEL, {("fog", 1): 0.5, ("fog", 2): 0.5})
    with pytest.raises(ValueError, match="clean_acc"):
        relative_corruption_errors(MODEL, 95.0, REF, 0.9)


def test_named_metrics() -> None:
    ece = {k: 0.1 * s for k, s in zip(MODEL, [1, 2, 1, 2])}
    out = corruption_metrics({"accuracy": MODEL, "ece": ece}, clean_acc=0.95, ref_acc=REF, ref_clean_acc=0.9)
    assert out["corruption/fog/2/accuracy"] == 0.8
    assert out["corruption/snow/1/ece"] == pytest.approx(0.1)
    assert out["corruption/mean/accuracy"] == pytest.approx(0.725)
    assert out["corruption/severity/2/ece"] == pytest.approx(0.2)
    assert out["corruption/severity/1/accuracy"] == pytest.approx(0.8)
    assert out["corruption/fog/ce"] == pytest.approx(0.5)
    assert out["corruption/mce"] == pytest.approx(0.65)
    assert out["corruption/snow/relative_ce"] == pytest.approx(0.875)
    assert out["corruption/relative_mce"] == pytest.approx(0.6875)
    assert len(out) == 4 * 2 + 2 + 2 * 2 + 2 + 1 + 2 + 1
    alone = corruption_metrics({"nll": MODEL})
    assert "corruption/mce" not in alone and "corruption/mean/nll" in alone
    with pytest.raises(ValueError, match="both"):
        corruption_metrics({"accuracy": MODEL}, clean_acc=0.9, ref_acc=REF)
    with pytest.raises(ValueError, match="accuracy"):
        corruption_metrics({"ece": ece}, ref_acc=REF)
    assert "reference" in CONVENTIONS and "error" in CONVENTIONS
