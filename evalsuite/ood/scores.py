"""OOD score functions: [N, K] logits -> [N] scores, numpy only, one sign convention.

Every score is higher for "more out-of-distribution", matching :mod:`evalsuite.metrics.ood` (AUROC with OOD
as positive). Scores are float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from evalsuite.core.registry import Registry

ScoreFn = Callable[[ArrayLike], np.ndarray]

OOD_SCORES: Registry[ScoreFn] = Registry("ood score")

SIGN_CONVENTION = "higher score = more out-of-distribution"


def _as_logits(logits: ArrayLike) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"logits must have shape [N, K] with N, K > 0, got {z.shape}")
    if np.isnan(z).any():
        raise ValueError("logits contain NaN")
    return z


def _logsumexp(z: np.ndarray) -> np.ndarray:
    m = np.max(z, axis=1)
    return m + np.log(np.sum(np.exp(z - m[:, None]), axis=1))


@OOD_SCORES.register("msp", help="negative maximum softmax probability (Hendrycks & Gimpel 2017)")
def msp(logits: ArrayLike) -> np.ndarray:
    """[N, K] logits -> [N] ``-max_k softmax(z)_k``; confident (ID-like) inputs score low."""
    z = _as_logits(logits)
    # max softmax = exp(max z - logsumexp z); computed this way it never overflows.
    return -np.exp(np.max(z, axis=1) - _logsumexp(z))


@OOD_SCORES.register("maxlogit", help="negative maximum logit (Hendrycks et al. 2022)")
def maxlogit(logits: ArrayLike) -> np.ndarray:
    """[N, K] logits -> [N] ``-max_k z_k``."""
    return -np.max(_as_logits(logits), axis=1)


@OOD_SCORES.register("energy", help="free energy -T logsumexp(z / T), T = 1 (Liu et al. 2020)")
def energy(logits: ArrayLike, temperature: float = 1.0) -> np.ndarray:
    """[N, K] logits -> [N] energy ``E(x) = -T logsumexp(z / T)``.

    Liu et al. define the energy so that ID data has *lower* energy; E(x) itself is therefore already
    "higher = more OOD" and is returned unnegated (their detector thresholds -E).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z = _as_logits(logits)
    return -temperature * _logsumexp(z / temperature)


FEATURE_SCORES: tuple[str, ...] = ("odin", "mahalanobis", "knn", "react", "vim")
"""Scores computed from penultimate features or input gradients, not from logits alone
(``evalsuite.ood.features``); registered so ``--ood-scores`` and ``evalsuite ls ood-scores`` know them."""

_FEATURE_HELP = {
    "odin": "ODIN: -max softmax(f(x')/T), T=1000, x' one signed-gradient step of 0.0014 (Liang et al. 2018)",
    "mahalanobis": "min over classes of the Mahalanobis distance, tied covariance, fit on training features "
    "(Lee et al. 2018)",
    "knn": "distance to the 50th nearest normalized training feature (Sun et al. 2022)",
    "react": "energy of the features clipped at their 90th training percentile (Sun et al. 2021)",
    "vim": "virtual-logit matching: residual norm outside the principal subspace minus logsumexp "
    "(Wang et al. 2022)",
}


def _feature_score(name: str) -> ScoreFn:
    def needs_features(logits: ArrayLike) -> np.ndarray:
        raise ValueError(f"{name} is computed from features (evalsuite.ood.features), not from logits alone")

    needs_features.feature_score = True  # type: ignore[attr-defined]
    return needs_features


for _name in FEATURE_SCORES:
    OOD_SCORES.add(_name, _feature_score(_name), help=_FEATURE_HELP[_name])


def is_feature_score(name: str) -> bool:
    """Whether ``name`` is a feature score (features or input gradients needed), not a logit score."""
    return name in FEATURE_SCORES
