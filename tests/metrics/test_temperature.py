"""Temperature scaling: the fit against netcal's TemperatureScaling on the same logits; exact small cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalsuite.metrics import catalogue as K
from evalsuite.metrics.classification import log_softmax
from evalsuite.metrics.temperature import fit_temperature, scaled_arrays, scaled_nll


def _logits(n: int, k: int, scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)  # shuffled labels: never a class-sorted prefix (netcal's binary trap)
    z = rng.normal(0, 1, (n, k))
    z[np.arange(n), y] += 2.0
    return z * scale, y


@pytest.mark.parametrize(("scale", "k"), [(3.0, 10), (0.5, 10), (2.0, 3)])
def test_matches_netcal(scale: float, k: int) -> None:
    from netcal.scaling import TemperatureScaling

    z, y = _logits(800, k, scale, seed=int(scale * 10) + k)
    ours = fit_temperature(z, y)
    ts = TemperatureScaling()
    ts.fit(np.exp(log_softmax(z)), y)
    # netcal multiplies the logits by a weight: T = 1 / weight
    theirs = 1.0 / float(np.asarray(ts.weights).reshape(-1)[0])
    assert ours == pytest.approx(theirs, rel=1e-4)
    assert (ours > 1) == (scale > 1.5)  # overconfident logits get T > 1, underconfident T < 1


def test_fit_is_the_nll_minimum() -> None:
    z, y = _logits(300, 5, 2.5, seed=1)
    t = fit_temperature(z, y)
    best = scaled_nll(z, y, t)
    for f in (0.98, 1.02):
        assert scaled_nll(z, y, t * f) > best
    assert best <= scaled_nll(z, y, 1.0)


def test_scaled_arrays_exact() -> None:
    z = np.array([[2.0, 0.0], [0.0, 4.0]])
    y = np.array([0, 0])
    out = scaled_arrays(z, y, 2.0)
    p0 = 1 / (1 + math.exp(-1.0))  # softmax([1, 0])[0]
    p1 = 1 / (1 + math.exp(-2.0))  # softmax([0, 2])[1]
    assert out["confidence"] == pytest.approx([p0, p1])
    assert out["nll"] == pytest.approx([-math.log(p0), -math.log(1 - p1)])
    assert out["brier"] == pytest.approx([2 * (1 - p0) ** 2, 2 * p1**2])


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="N > 0"):
        fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="NaN"):
        fit_temperature(np.array([[np.nan, 0.0]]), np.array([0]))


def test_catalogue_entries() -> None:
    t = K.lookup("calibration/ts/temperature").family
    assert t.group == "calibration" and not t.tested and t.merge == "equal"
    for name in ("nll", "ece", "ece_adaptive", "brier"):
        fam = K.lookup(f"calibration/ts/{name}").family
        raw = K.lookup(name).family
        assert fam.higher_is_better is False and fam.paired_test == raw.paired_test == "permutation"
        assert fam.value_ci == raw.value_ci
    assert K.calibration_bound_args("calibration/ts/ece_adaptive") == ("ece", "adaptive")
