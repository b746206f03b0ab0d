"""Temperature scaling (Guo et al. 2017): one scalar T dividing the logits, fit by minimizing the NLL on a
held-out split. Pure numpy/scipy, so results can be refit from their arrays without torch.

Why a hand-written fit rather than netcal's ``TemperatureScaling``: the NLL is convex in 1/T (a log-sum-exp
minus a linear term), so a bounded 1-D Brent search on log T finds the optimum to ``xatol`` with no
learning rate, no iteration budget and no torch; netcal's fit takes probabilities (it re-derives logits
as their logs), pulls in pyro and gpytorch, and treats inputs with at most two label values as a binary
problem. The tests check both fits agree on the same logits.
"""

from __future__ import annotations

import math

import numpy as np

from evalsuite.metrics.classification import log_softmax

# T in [e^-6, e^6]: wider than any trained net needs (CIFAR ResNets fit T ~ 1-3); the bound is reported
# when the fit hits it rather than silently clipped
LOG_T_BOUNDS = (-6.0, 6.0)
LOG_T_XATOL = 1e-7


def scaled_nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean NLL (nats) of ``softmax(logits / temperature)`` at the labels; logits [N, K], labels [N]."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return float(-np.mean(logp[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimizing ``scaled_nll(logits, labels, T)``; ValueError on an empty or NaN split.

    logits [N, K] float, labels [N] int.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if z.ndim != 2 or y.shape != (z.shape[0],) or z.shape[0] == 0:
        raise ValueError(f"temperature fit needs logits [N, K] and labels [N] with N > 0, got {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("temperature fit: logits contain NaN or infinity")
    from scipy.optimize import minimize_scalar  # scipy loads only when a fit is made

    res = minimize_scalar(
        lambda log_t: scaled_nll(z, y, math.exp(log_t)),
        bounds=LOG_T_BOUNDS,
        method="bounded",
        options={"xatol": LOG_T_XATOL},
    )
    return float(math.exp(res.x))


def scaled_arrays(logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict[str, np.ndarray]:
    """Per-example ``confidence``, ``nll`` and ``brier`` (float64 [N]) of ``softmax(logits / T)``.

    The prediction (argmax) is unchanged by T > 0, so correctness is the raw one.
    """
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    probs = np.exp(logp)
    rows = np.arange(len(labels))
    onehot = np.zeros_like(probs)
    onehot[rows, labels] = 1.0
    return {
        "confidence": probs.max(1),
        "nll": -logp[rows, labels],
        "brier": ((probs - onehot) ** 2).sum(1),
    }


def first(values: np.ndarray) -> float:
    """The single value of a one-element array (a fitted scalar stored beside the per-example arrays)."""
    return float(np.asarray(values).reshape(-1)[0])
