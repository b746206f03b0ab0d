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
