"""Feature-based OOD detectors: ODIN, Mahalanobis, KNN, ReAct and ViM, as pure functions over arrays.

Every score is higher for "more out-of-distribution", the convention of :mod:`evalsuite.ood.scores`.
The fit-able detectors split into ``fit_<name>(training features, ...) -> <Name>Fit`` (the statistics,
computed once on a training split and cacheable by model hash through ``to_npz``/``from_npz``) and
``<name>(features, fit) -> [N] float64 scores``. Features are ``[N, D]`` (float16, float32 or float64,
numpy or torch); all arithmetic runs in float64. ODIN needs the model and one backward pass per batch.

Each detector is checked against pytorch-ood in ``tests/ood/test_features.py``; where the numbers
legitimately differ (Mahalanobis' covariance scale) the docstring says so.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from torch import nn

from evalsuite.core.errors import DataError, UsageError
from evalsuite.core.io import atomic_write
from evalsuite.ood.scores import energy

FEATURE_DETECTORS = ("odin", "mahalanobis", "knn", "react", "vim")
"""The detector names, as ``--ood-scores`` would list them."""

ODIN_TEMPERATURE = 1000.0
ODIN_EPS = 0.0014
"""ODIN's defaults (Liang et al. 2018, CIFAR): T = 1000, eps = 0.0014 in [0, 1] pixel units."""
KNN_K = 50
REACT_PERCENTILE = 90.0

# Memory bound of one chunk of the [chunk, N_train] similarity matrix (float64): 256 MiB.
_CHUNK_BYTES = 1 << 28

F_ = TypeVar("F_", bound="_Fitted")


def as_features(features: ArrayLike | torch.Tensor, what: str = "features") -> np.ndarray:
    """``[N, D]`` features as a float64 numpy array; NaN/inf or a wrong shape is a DataError."""
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] == 0:
        raise DataError(f"{what} must have shape [N, D] with N, D > 0, got {f.shape}")
    if not np.isfinite(f).all():
        raise DataError(f"{what} contain NaN or infinite values")
    return f


def _check_dim(f: np.ndarray, dim: int, detector: str) -> None:
    if f.shape[1] != dim:
        raise DataError(f"{detector}: features have {f.shape[1]} dimensions, the fit has {dim}")


def _head(
    weight: ArrayLike | torch.Tensor, bias: ArrayLike | torch.Tensor | None
) -> tuple[np.ndarray, np.ndarray]:
    w = as_features(weight, "last linear layer weight")
    if bias is None:
        b = np.zeros(w.shape[0])
    else:
        if isinstance(bias, torch.Tensor):
            bias = bias.detach().cpu().numpy()
        b = np.asarray(bias, dtype=np.float64).reshape(-1)
        if b.shape[0] != w.shape[0]:
            raise DataError(f"last linear layer: weight is {w.shape} but bias has {b.shape[0]} entries")
    return w, b


def _logsumexp(z: np.ndarray) -> np.ndarray:
    m = np.max(z, axis=1)
    return m + np.log(np.sum(np.exp(z - m[:, None]), axis=1))


class _Fitted:
    """Save/load of fitted statistics: every field an array or a number; ``kind`` names the detector."""

    kind: ClassVar[str]

    def arrays(self) -> dict[str, np.ndarray]:
        """The statistics as a dict of numpy arrays (numbers as 0-d arrays), plus ``detector``."""
        out = {k: np.asarray(v) for k, v in asdict(self).items()}  # type: ignore[call-overload]
        out["detector"] = np.asarray(self.kind)
        return out

    @classmethod
    def from_arrays(cls: type[F_], arrays: Mapping[str, Any]) -> F_:
        """Rebuild from ``arrays()`` output; a wrong detector or missing key is a DataError."""
        got = str(np.asarray(arrays.get("detector", ""))) if "detector" in arrays else None
        if got != cls.kind:
            raise DataError(f"fitted statistics are for detector {got!r}, not {cls.kind!r}")
        values: dict[str, Any] = {}
        for fld in fields(cls):  # type: ignore[arg-type]
            if fld.name not in arrays:
                raise DataError(f"fitted {cls.kind} statistics lack {fld.name!r}")
            a = np.asarray(arrays[fld.name])
            values[fld.name] = a.item() if a.ndim == 0 else a
        return cls(**values)

    def to_npz(self, path: str | os.PathLike[str]) -> None:
        """Write the statistics to ``path`` (.npz) atomically."""
        arrays = self.arrays()
        atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]

    @classmethod
    def from_npz(cls: type[F_], path: str | os.PathLike[str]) -> F_:
        """Read statistics written by ``to_npz``; an unreadable or foreign file is a DataError."""
        return cls.from_arrays(_read_npz(path))


def _read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable statistics file ({type(e).__name__}: {e})") from None


# ---------------------------------------------------------------------------------------------------- ODIN


def odin_scores(
    model: nn.Module, x: torch.Tensor, temperature: float = ODIN_TEMPERATURE, eps: float = ODIN_EPS
) -> np.ndarray:
    """ODIN (Liang et al. 2018) on one batch ``x`` [B, C, H, W] in [0, 1] -> [B] float64 scores.

    ``x_hat = x - eps * sign(grad_x CE(f(x) / T, argmax f(x)))``, score ``-max softmax(f(x_hat) / T)``.
    Costed like one FGSM step: one forward with a backward, one forward. ``eps`` is in the model's input
    units, [0, 1] pixels here (the paper's step on normalized inputs divided by std is the same thing);
    ``x_hat`` is not clamped to [0, 1], as in the reference code. Only the input gets a gradient; the
    model's mode (eval) is the caller's; runs even inside ``torch.inference_mode``.
    """
    if not temperature > 0:
        raise UsageError(f"odin: temperature must be positive, got {temperature}")
    if not eps >= 0:
        raise UsageError(f"odin: eps must be >= 0, got {eps}")
    with torch.inference_mode(False), torch.enable_grad():
        # inference tensors cannot enter autograd; a clone made here is a normal tensor
        x0 = x.detach().clone().requires_grad_(True)
        logits = model(x0) / temperature
        target = logits.argmax(dim=1)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, target), x0)
        x_hat = x0.detach() - eps * grad.sign()
        with torch.no_grad():
            z = model(x_hat).double() / temperature
    return (-torch.softmax(z, dim=1).max(dim=1).values).cpu().numpy()


# --------------------------------------------------------------------------------------------- Mahalanobis


@dataclass(frozen=True)
class MahalanobisFit(_Fitted):
    """Class means ``[K, D]`` (rows for ``classes``), pseudo-inverse of the tied covariance ``[D, D]``."""

    kind: ClassVar[str] = "mahalanobis"
    classes: np.ndarray
    means: np.ndarray
    precision: np.ndarray


def fit_mahalanobis(features: ArrayLike | torch.Tensor, labels: ArrayLike | torch.Tensor) -> MahalanobisFit:
    """Class means and a tied covariance ``(1/N) sum_c sum_i (f_i - mu_c)(f_i - mu_c)^T`` (Lee et al. 2018).

    The precision is the pseudo-inverse (sklearn's ``EmpiricalCovariance``, which the reference code uses),
    so features with fewer training examples than dimensions, or dead ReLU units, still give a fit.
    Every class seen in ``labels`` gets a mean.
    """
    f = as_features(features, "training features")
    y = np.asarray(labels.cpu().numpy() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
    if y.shape[0] != f.shape[0]:
        raise DataError(f"mahalanobis: {f.shape[0]} training features but {y.shape[0]} labels")
    classes = np.unique(y)
    means = np.stack([f[y == c].mean(axis=0) for c in classes])
    centred = f - means[np.searchsorted(classes, y)]
    cov = centred.T @ centred / f.shape[0]
    precision = np.linalg.pinv(cov, hermitian=True)
    return MahalanobisFit(classes=classes.astype(np.int64), means=means, precision=precision)


def mahalanobis(features: ArrayLike | torch.Tensor, fit: MahalanobisFit) -> np.ndarray:
    """``[N, D]`` -> ``[N]`` ``min_c (f - mu_c)^T Sigma^+ (f - mu_c)``: squared distance to the closest class.

    pytorch-ood returns half of this with ``Sigma`` unnormalized (a sum, not a mean, plus a 1e-6 ridge), i.e.
    ``d^2 / (2 N_fit)``: a positive multiple, so the ranking and every AUROC are the same.
    """
    f = as_features(features)
    _check_dim(f, fit.means.shape[1], "mahalanobis")
    # (f - mu)^T P (f - mu) = f^T P f - 2 f^T P mu + mu^T P mu: one [N, D] x [D, D] product instead of K
    fp = f @ fit.precision
    mp = fit.means @ fit.precision
    d2 = np.sum(fp * f, axis=1)[:, None] - 2.0 * fp @ fit.means.T + np.sum(mp * fit.means, axis=1)[None, :]
    return np.maximum(d2.min(axis=1), 0.0)


# ----------------------------------------------------------------------------------------------------- KNN


@dataclass(frozen=True)
class KNNFit(_Fitted):
    """The L2-normalized training features ``[N_fit, D]`` (float64) and k."""

    kind: ClassVar[str] = "knn"
    bank: np.ndarray
    k: int


def _normalize(f: np.ndarray) -> np.ndarray:
    # the clamp keeps an all-zero feature (every ReLU dead) finite, as pytorch-ood does
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def fit_knn(features: ArrayLike | torch.Tensor, k: int = KNN_K) -> KNNFit:
    """Bank of normalized training features for the k-th-nearest-neighbour score (Sun et al. 2022)."""
    f = as_features(features, "training features")
    if not 1 <= k <= f.shape[0]:
        raise UsageError(f"knn: k must be in 1..{f.shape[0]} (the number of fit examples), got {k}")
    return KNNFit(bank=_normalize(f), k=int(k))


def knn(features: ArrayLike | torch.Tensor, fit: KNNFit, chunk: int | None = None) -> np.ndarray:
    """``[N, D]`` -> ``[N]`` L2 distance from each normalized feature to its k-th nearest bank feature.

    Exact: chunked float64 matmul, ``||a - b||^2 = |a|^2 + |b|^2 - 2 a.b`` (the norms are 1, or 0 for an
    all-zero feature), no approximate index. ``chunk`` rows per product (default: a 256 MiB block).
    """
    f = _normalize(as_features(features))
    _check_dim(f, fit.bank.shape[1], "knn")
    bank = np.asarray(fit.bank, dtype=np.float64)
    n_bank, k = bank.shape[0], int(fit.k)
    if not 1 <= k <= n_bank:
        raise DataError(f"knn: k={k} but the bank holds {n_bank} features")
    bank_sq = np.sum(bank * bank, axis=1)
    f_sq = np.sum(f * f, axis=1)
    rows = chunk or max(1, _CHUNK_BYTES // (8 * n_bank))
    out = np.empty(f.shape[0])
    for start in range(0, f.shape[0], rows):
        stop = start + rows
        d2 = f_sq[start:stop, None] + bank_sq[None, :] - 2.0 * (f[start:stop] @ bank.T)
        out[start:stop] = np.partition(d2, k - 1, axis=1)[:, k - 1]
    return np.sqrt(np.maximum(out, 0.0))


# --------------------------------------------------------------------------------------------------- ReAct


@dataclass(frozen=True)
class ReActFit(_Fitted):
    """The clipping threshold, its percentile, and the last linear layer (``weight [K, D]``, ``bias [K]``)."""

    kind: ClassVar[str] = "react"
    threshold: float
    percentile: float
    weight: np.ndarray
    bias: np.ndarray


def fit_react(
    features: ArrayLike | torch.Tensor,
    weight: ArrayLike | torch.Tensor,
    bias: ArrayLike | torch.Tensor | None,
    percentile: float = REACT_PERCENTILE,
) -> ReActFit:
    """Threshold = the ``percentile``-th percentile of all training activations (Sun et al. 2021: 90).

    Percentile over every entry of ``[N, D]`` with numpy's linear interpolation, as the reference does.
    """
    if not 0.0 <= percentile <= 100.0:
        raise UsageError(f"react: percentile must be in [0, 100], got {percentile}")
    f = as_features(features, "training features")
    w, b = _head(weight, bias)
    _check_dim(f, w.shape[1], "react")
    return ReActFit(
        threshold=float(np.percentile(f, percentile)), percentile=float(percentile), weight=w, bias=b
    )


def react(features: ArrayLike | torch.Tensor, fit: ReActFit) -> np.ndarray:
    """``[N, D]`` -> ``[N]`` energy ``-logsumexp(W min(f, t) + b)`` of the clipped features (higher = OOD)."""
    f = as_features(features)
    _check_dim(f, fit.weight.shape[1], "react")
    return energy(np.minimum(f, fit.threshold) @ fit.weight.T + fit.bias)


# ----------------------------------------------------------------------------------------------------- ViM


@dataclass(frozen=True)
class ViMFit(_Fitted):
    """Origin ``u = -W^+ b``, residual basis ``[D, D - dim]``, alpha, and the last linear layer."""

    kind: ClassVar[str] = "vim"
    origin: np.ndarray
    residual_basis: np.ndarray
    alpha: float
    dim: int
    weight: np.ndarray
    bias: np.ndarray


def vim_default_dim(feature_dim: int) -> int:
    """The principal-subspace size ViM's code picks: 1000 for D >= 2048, 512 for D >= 768, else D // 2."""
    if feature_dim >= 2048:
        return 1000
    if feature_dim >= 768:
        return 512
    return max(1, feature_dim // 2)


def fit_vim(
    features: ArrayLike | torch.Tensor,
    weight: ArrayLike | torch.Tensor,
    bias: ArrayLike | torch.Tensor | None,
    dim: int | None = None,
) -> ViMFit:
    """ViM (Wang et al. 2022): principal subspace of the training features about ``u = -W^+ b``.

    The residual basis is the eigenvectors of ``(1/N) X^T X`` (``X = f - u``) outside the ``dim`` largest;
    ``alpha = mean max-logit / mean residual norm`` over the training features, logits ``W f + b``.
    """
    f = as_features(features, "training features")
    w, b = _head(weight, bias)
    _check_dim(f, w.shape[1], "vim")
    d = f.shape[1]
    dim = vim_default_dim(d) if dim is None else int(dim)
    if not 1 <= dim < d:
        raise UsageError(f"vim: the principal dimension must be in 1..{d - 1} for {d}-d features, got {dim}")
    origin = -np.linalg.pinv(w) @ b
    x = f - origin
    eig_vals, eig_vecs = np.linalg.eigh(x.T @ x / x.shape[0])
    # eigh sorts ascending: the first D - dim columns span the residual (least-variance) space
    basis = np.ascontiguousarray(eig_vecs[:, np.argsort(eig_vals, kind="stable")[: d - dim]])
    residual = np.linalg.norm(x @ basis, axis=1).mean()
    if not residual > 0:
        raise DataError("vim: training features have no residual outside the principal subspace")
    alpha = float((f @ w.T + b).max(axis=1).mean() / residual)
    return ViMFit(origin=origin, residual_basis=basis, alpha=alpha, dim=dim, weight=w, bias=b)


def vim(
    features: ArrayLike | torch.Tensor, fit: ViMFit, logits: ArrayLike | torch.Tensor | None = None
) -> np.ndarray:
    """``[N, D]`` -> ``[N]`` ``alpha ||(f - u) R|| - logsumexp(logits)``: the virtual logit minus -energy.

    ``logits`` default to ``W f + b`` (the reference's choice); pass the model's own if its head is not
    exactly the recorded linear layer.
    """
    f = as_features(features)
    _check_dim(f, fit.weight.shape[1], "vim")
    z = f @ fit.weight.T + fit.bias if logits is None else as_features(logits, "logits")
    if z.shape[0] != f.shape[0]:
        raise DataError(f"vim: {f.shape[0]} features but {z.shape[0]} logits")
    virtual = fit.alpha * np.linalg.norm((f - fit.origin) @ fit.residual_basis, axis=1)
    return virtual - _logsumexp(z)


FITTED_TYPES: dict[str, type[_Fitted]] = {cls.kind: cls for cls in (MahalanobisFit, KNNFit, ReActFit, ViMFit)}
"""detector name -> its fitted-statistics class (``FITTED_TYPES[name].from_npz(path)``)."""


def load_fitted(path: str | os.PathLike[str]) -> _Fitted:
    """Read any detector's statistics written by ``to_npz``; the file says which detector."""
    arrays = _read_npz(path)
    kind = str(arrays.get("detector", ""))
    if kind not in FITTED_TYPES:
        raise DataError(f"{path}: not fitted detector statistics (detector {kind!r})")
    return FITTED_TYPES[kind].from_arrays(arrays)


FITTED_DETECTORS = ("mahalanobis", "knn", "react", "vim")
"""The detectors with statistics fit on training features (ODIN needs none, only the model)."""


def fit_detectors(
    names: tuple[str, ...] | list[str],
    features: ArrayLike | torch.Tensor,
    labels: ArrayLike | torch.Tensor,
    head: tuple[np.ndarray, np.ndarray] | None,
    k: int = KNN_K,
    percentile: float = REACT_PERCENTILE,
    vim_dim: int | None = None,
) -> dict[str, _Fitted]:
    """Fit each named detector on training ``features`` [N, D] / ``labels`` [N] (one pass over the fit set).

    ``head`` is the last linear layer ``(W [K, D], b [K])``; ReAct and ViM need it (UsageError without).
    Names outside ``FITTED_DETECTORS`` (``odin``) are skipped; unknown names are a UsageError.
    """
    unknown = [n for n in names if n not in FEATURE_DETECTORS]
    if unknown:
        raise UsageError(
            f"unknown feature detector(s) {', '.join(unknown)}; from: {', '.join(FEATURE_DETECTORS)}"
        )
    f = as_features(features, "training features")
    fits: dict[str, _Fitted] = {}
    for name in names:
        if name in ("react", "vim") and head is None:
            raise UsageError(f"{name} needs the feature layer to be the model's last linear layer")
        if name == "mahalanobis":
            fits[name] = fit_mahalanobis(f, labels)
        elif name == "knn":
            fits[name] = fit_knn(f, k=k)
        elif name == "react":
            assert head is not None
            fits[name] = fit_react(f, *head, percentile=percentile)
        elif name == "vim":
            assert head is not None
            fits[name] = fit_vim(f, *head, dim=vim_dim)
    return fits


def score_detectors(
    fits: Mapping[str, _Fitted],
    features: ArrayLike | torch.Tensor,
    logits: ArrayLike | torch.Tensor | None = None,
) -> dict[str, np.ndarray]:
    """``{name: [N] scores}`` of every fitted detector on ``features`` [N, D] (``logits`` go to ViM)."""
    f = as_features(features)
    out: dict[str, np.ndarray] = {}
    for name, fit in fits.items():
        if isinstance(fit, MahalanobisFit):
            out[name] = mahalanobis(f, fit)
        elif isinstance(fit, KNNFit):
            out[name] = knn(f, fit)
        elif isinstance(fit, ReActFit):
            out[name] = react(f, fit)
        elif isinstance(fit, ViMFit):
            out[name] = vim(f, fit, logits=logits)
        else:
            raise UsageError(f"{name}: not fitted detector statistics ({type(fit).__name__})")
    return out
