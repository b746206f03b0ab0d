"""Layer-wise density schemes: given the prunable layers and a global density, one density per layer.

Global density = kept prunable weights / all prunable weights. Every scheme returns densities whose
weighted mean is the target exactly (before rounding to whole weights; rounding moves it by at most
half a weight per layer).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from evalsuite.core.errors import UsageError
from evalsuite.core.registry import Registry
from evalsuite.sparsity.layers import PrunableLayer


@dataclass
class SchemeContext:
    """What data-driven schemes (snip, grasp) need: the freshly initialized dense model and a batch."""

    model: nn.Module | None = None
    batch: tuple[torch.Tensor, torch.Tensor] | None = None


Scheme = Callable[[Sequence[PrunableLayer], float, SchemeContext], list[float]]

SCHEMES: Registry[Scheme] = Registry("sparsity scheme")

UNIFORM_PLUS_LAST_MIN = 0.2

DATA_SCHEMES = frozenset({"snip", "grasp"})
"""Schemes whose layer ratios come from scores on training images; every other scheme needs only shapes."""


def needs_data(scheme: str) -> bool:
    """True for the schemes that score weights on a batch of training data (snip, grasp)."""
    SCHEMES.get(scheme)  # UsageError listing the known schemes
    return scheme in DATA_SCHEMES


def check_density(density: float) -> float:
    """Return ``density`` as a float; UsageError unless it lies in (0, 1]."""
    if not (0.0 < float(density) <= 1.0):
        raise UsageError(f"density must be in (0, 1] (fraction of weights kept), got {density}")
    return float(density)


def layer_densities(
    scheme: str, layers: Sequence[PrunableLayer], density: float, ctx: SchemeContext | None = None
) -> list[float]:
    """Per-layer densities for ``scheme`` at global ``density``, in the order of ``layers``."""
    fn = SCHEMES.get(scheme)
    density = check_density(density)
    if not layers:
        raise UsageError("the model has no prunable (conv or linear) layers")
    out = fn(layers, density, ctx or SchemeContext())
    if any(not (0.0 <= d <= 1.0 + 1e-12) for d in out):
        raise UsageError(f"scheme {scheme!r} cannot reach density {density} on this model")
    return [min(1.0, max(0.0, d)) for d in out]


def _last_linear(layers: Sequence[PrunableLayer]) -> int:
    """Index of the last linear layer in graph order (the classifier); the last layer if none is linear."""
    for i in range(len(layers) - 1, -1, -1):
        if layers[i].kind == "linear":
            return i
    return len(layers) - 1


@SCHEMES.register("dense", help="every layer at density 1 (the dense twin); --density must be 1")
def dense(layers: Sequence[PrunableLayer], density: float, ctx: SchemeContext) -> list[float]:
    """Density 1.0 for every layer; UsageError unless ``density`` is 1."""
    if density != 1.0:
        raise UsageError(f"scheme 'dense' keeps every weight; --density must be 1, got {density}")
    return [1.0] * len(layers)


@SCHEMES.register("uniform", help="every layer at the global density")
def uniform(layers: Sequence[PrunableLayer], density: float, ctx: SchemeContext) -> list[float]:
    """The global ``density`` for every layer."""
    return [density] * len(layers)


@SCHEMES.register(
    "uniform+",
    help="first layer dense, last layer at least 0.2, the rest uniform (Gale et al. 2019)",
)
def uniform_plus(layers: Sequence[PrunableLayer], density: float, ctx: SchemeContext) -> list[float]:
    """First layer dense, last linear at least 0.2, the rest uniform so the global density holds."""
    if len(layers) < 3:
        return uniform(layers, density, ctx)
    n = [layer.numel for layer in layers]
    first, last = 0, _last_linear(layers)
    budget = density * sum(n)
    rest = [i for i in range(len(layers)) if i not in (first, last)]
    n_rest = sum(n[i] for i in rest)
    d_last = UNIFORM_PLUS_LAST_MIN
    d_rest = (budget - n[first] - d_last * n[last]) / n_rest
    if d_rest > d_last:
        # above 0.2 the floor no longer binds: last layer joins the uniform rest
        d_rest = (budget - n[first]) / (n_rest + n[last])
        d_last = d_rest
    if d_rest <= 0:
        need = (n[first] + UNIFORM_PLUS_LAST_MIN * n[last]) / sum(n)
        raise UsageError(
            f"uniform+ keeps the first layer dense and the last at 0.2: density must exceed {need:.4f}"
        )
    out = [d_rest] * len(layers)
    out[first], out[last] = 1.0, d_last
    return out


def _erdos_renyi(
    layers: Sequence[PrunableLayer], density: float, raw: Sequence[float], dense_from_start: set[int]
) -> list[float]:
    """Densities proportional to ``raw``, scaled so the global density holds (RigL's solver).

    A layer whose density would pass 1 is made dense and the others re-solved, until none passes 1.
    """
    n = [layer.numel for layer in layers]
    total = sum(n)
    dense_set = set(dense_from_start)
    while True:
        budget = density * total - sum(n[i] for i in dense_set)
        divisor = sum(raw[i] * n[i] for i in range(len(layers)) if i not in dense_set)
        if budget < -1e-9 or (divisor == 0 and budget > 1e-9):
            raise UsageError(f"density {density} cannot be met with layers {sorted(dense_set)} kept dense")
        eps = budget / divisor if divisor > 0 else 0.0
        over = [i for i in range(len(layers)) if i not in dense_set and eps * raw[i] > 1.0]
        if not over:
            break
        top = max(raw[i] for i in over)
        dense_set.update(i for i in over if raw[i] == top)
    return [1.0 if i in dense_set else eps * raw[i] for i in range(len(layers))]


@SCHEMES.register("er", help="Erdos-Renyi: density ~ (n_in + n_out) / (n_in * n_out)")
def er(layers: Sequence[PrunableLayer], density: float, ctx: SchemeContext) -> list[float]:
    """Erdos-Renyi densities, proportional to (n_in + n_out) / (n_in * n_out)."""
    raw = [(lay.fan_in + lay.fan_out) / (lay.fan_in * lay.fan_out) for lay in layers]
    return _erdos_renyi(layers, density, raw, set())


def _erk_raw(layers: Sequence[PrunableLayer]) -> list[float]:
    # sum over the weight's dims / their product: (n_in + n_out + k_h + k_w) / (n_in n_out k_h k_w);
    # a linear layer has shape (n_out, n_in) only, so it is (n_in + n_out) / (n_in n_out)
    return [sum(lay.shape) / lay.numel for lay in layers]


@SCHEMES.register("erk", help="Erdos-Renyi-Kernel: density ~ (n_in+n_out+k_h+k_w)/(n_in n_out k_h k_w)")
def erk(layers: Sequence[PrunableLayer], density: float, ctx: SchemeContext) -> list[float]:
    """Erdos-Renyi-Kernel densities, proportional to the sum of the weight's dims over their product."""
    return _erdos_renyi(layers, density, _erk_raw(layers), set())


@SCHEMES.register("erk+", help="ERK with the last (classifier) layer dense, the paper's ImageNet setting")
def erk_plus(layers: Sequence[PrunableLayer], density: float, ctx: SchemeContext) -> list[float]:
    """ERK densities with the last linear (classifier) layer kept dense."""
    return _erdos_renyi(layers, density, _erk_raw(layers), {_last_linear(layers)})


def _params_by_name(model: nn.Module, layers: Sequence[PrunableLayer]) -> list[torch.Tensor]:
    params = dict(model.named_parameters())
    return [params[lay.name] for lay in layers]


def _ratios_from_scores(
    layers: Sequence[PrunableLayer], scores: list[torch.Tensor], density: float
) -> list[float]:
    """Keep the top-scoring ``round(density * N)`` weights globally; return each layer's kept fraction."""
    flat = torch.cat([s.flatten() for s in scores])
    k = int(density * flat.numel() + 0.5)
    if k >= flat.numel():
        return [1.0] * len(layers)
    # ties at the threshold are broken by position (stable sort), so exactly k are kept
    order = torch.argsort(flat, descending=True, stable=True)
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    keep[order[:k]] = True
    out, start = [], 0
    for lay in layers:
        out.append(float(keep[start : start + lay.numel].sum()) / lay.numel)
        start += lay.numel
    return out


def _require_batch(ctx: SchemeContext, name: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    if ctx.model is None or ctx.batch is None:
        raise UsageError(f"SNIP/GraSP ratios need the model and a batch of training data (scheme {name!r})")
    return ctx.model, ctx.batch[0], ctx.batch[1]


@SCHEMES.register(
    "snip",
    help="layer ratios of one-shot SNIP (|g * w|) on training images (needs the data); positions random",
)
def snip(layers: Sequence[PrunableLayer], density: float, ctx: SchemeContext) -> list[float]:
    """Per-layer kept fractions of a global top-k on SNIP scores |g * w| from one batch."""
    model, x, y = _require_batch(ctx, "snip")
    weights = _params_by_name(model, layers)
    model.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, weights)
    scores = [(g * w).abs().detach() for g, w in zip(grads, weights)]
    return _ratios_from_scores(layers, scores, density)


GRASP_TEMPERATURE = 200.0


@SCHEMES.register(
    "grasp",
    help="layer ratios of one-shot GraSP (-w * Hg) on training images (needs the data); positions random",
)
def grasp(layers: Sequence[PrunableLayer], density: float, ctx: SchemeContext) -> list[float]:
    """Per-layer kept fractions of a global top-k on GraSP scores w * Hg from one batch."""
    model, x, y = _require_batch(ctx, "grasp")
    weights = _params_by_name(model, layers)
    # Wang et al. 2020: g from the plain loss, Hg by double backprop through a temperature-scaled loss
    # (T = 200, as in their code); weights whose removal least reduces gradient flow score lowest.
    loss = nn.functional.cross_entropy(model(x), y)
    g = [t.detach() for t in torch.autograd.grad(loss, weights)]
    loss_t = nn.functional.cross_entropy(model(x) / GRASP_TEMPERATURE, y)
    g_t = torch.autograd.grad(loss_t, weights, create_graph=True)
    z = functools.reduce(operator.add, ((a * b).sum() for a, b in zip(g, g_t)))
    hg = torch.autograd.grad(z, weights)
    # GraSP removes the highest -w*Hg; keeping the top of w*Hg keeps the lowest -w*Hg
    scores = [(w * h).detach() for w, h in zip(weights, hg)]
    return _ratios_from_scores(layers, scores, density)
