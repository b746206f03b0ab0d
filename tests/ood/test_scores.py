"""OOD score functions: values against torch, the sign convention, stability and the registry."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from evalsuite.core.errors import UsageError
from evalsuite.metrics import auroc
from evalsuite.ood import FEATURE_SCORES, OOD_SCORES, energy, maxlogit, msp
from evalsuite.ood.features import FEATURE_DETECTORS


def _logits(seed: int, n: int = 200, k: int = 10) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, k)) * 3.0


def test_registry_lists_and_returns_the_scores() -> None:
    assert OOD_SCORES.names() == sorted(["energy", "maxlogit", "msp", *FEATURE_SCORES])
    assert FEATURE_SCORES == FEATURE_DETECTORS
    assert OOD_SCORES.get("msp") is msp
    assert OOD_SCORES.get("maxlogit") is maxlogit
    assert OOD_SCORES.get("energy") is energy
    assert all(OOD_SCORES.describe(name) for name in OOD_SCORES)
    with pytest.raises(UsageError, match="did you mean energy"):
        OOD_SCORES.get("energi")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_torch(seed: int) -> None:
    z = _logits(seed)
    t = torch.from_numpy(z)
    np.testing.assert_allclose(msp(z), -torch.softmax(t, 1).max(1).values.numpy(), atol=1e-12)
    np.testing.assert_allclose(maxlogit(z), -t.max(1).values.numpy(), atol=0)
    np.testing.assert_allclose(energy(z), -torch.logsumexp(t, 1).numpy(), atol=1e-12)
    np.testing.assert_allclose(
        energy(z, temperature=2.0), -2.0 * torch.logsumexp(t / 2.0, 1).numpy(), atol=1e-12
    )


def test_tiny_hand_values() -> None:
    z = [[0.0, 0.0], [np.log(3.0), 0.0]]
    np.testing.assert_allclose(msp(z), [-0.5, -0.75], atol=1e-15)
    np.testing.assert_allclose(maxlogit(z), [0.0, -np.log(3.0)], atol=1e-15)
    np.testing.assert_allclose(energy(z), [-np.log(2.0), -np.log(4.0)], atol=1e-15)


@pytest.mark.parametrize("score", [msp, maxlogit, energy])
def test_constructed_ood_inputs_score_higher(score: Callable[[np.ndarray], np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    # ID: one dominant logit (confident). OOD: small, flat logits (uncertain, low evidence).
    id_logits = rng.normal(0.0, 0.3, size=(50, 10))
    id_logits[np.arange(50), rng.integers(0, 10, 50)] += 10.0
    ood_logits = rng.normal(0.0, 0.3, size=(40, 10))
    s_id, s_ood = score(id_logits), score(ood_logits)
    assert s_ood.min() > s_id.max()
    assert auroc(s_id, s_ood) == 1.0


@pytest.mark.parametrize("score", [msp, maxlogit, energy])
def test_scores_are_stable_for_huge_logits(score: Callable[[np.ndarray], np.ndarray]) -> None:
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [1e4, 1e4, 1e4]])
    s = score(z)
    assert s.shape == (3,) and s.dtype == np.float64 and np.isfinite(s).all()


def test_huge_logit_values() -> None:
    z = np.array([[1e4, 0.0], [-1e4, -1e4]])
    np.testing.assert_allclose(msp(z), [-1.0, -0.5], atol=1e-15)
    np.testing.assert_allclose(energy(z), [-1e4, 1e4 - np.log(2.0)], rtol=1e-15)


@pytest.mark.parametrize("score", [msp, maxlogit, energy])
def test_scores_reject_bad_shapes(score: Callable[[np.ndarray], np.ndarray]) -> None:
    with pytest.raises(ValueError, match=r"logits must have shape \[N, K\] with N, K > 0"):
        score(np.zeros(5))
    with pytest.raises(ValueError, match=r"logits must have shape \[N, K\] with N, K > 0"):
        score(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="logits contain NaN"):
        score(np.array([[np.nan, 0.0]]))


def test_energy_rejects_non_positive_temperature() -> None:
    with pytest.raises(ValueError, match="temperature must be positive"):
        energy(np.zeros((1, 2)), temperature=0.0)
