"""Exact-count random masks, their hash, and keeping masked weights at zero through training.

Layer l keeps exactly ``round(d_l * n_l)`` weights. Positions come from one dedicated
``torch.Generator`` seeded by the mask seed, independent of the weight-init stream: for each layer in
graph order we draw a full random permutation of its ``n_l`` positions and keep the first k. Every
layer always consumes one permutation, so for a fixed mask seed the masks are nested across densities
(the 5 % mask lies inside the 10 % mask), and a layer's draw does not depend on other layers' densities.
(Random_Pruning draws Bernoulli masks from the global RNG instead: counts vary and seeds interact.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from evalsuite.core.errors import UsageError
from evalsuite.sparsity.layers import PrunableLayer


def kept_count(density: float, numel: int) -> int:
    """round(d * n), halves rounded up (not Python's banker's rounding)."""
    return min(numel, int(np.floor(density * numel + 0.5)))


def draw_masks(
    layers: Sequence[PrunableLayer], densities: Sequence[float], mask_seed: int
) -> dict[str, torch.Tensor]:
    """Boolean masks (True = kept), one per layer, shaped like the weight. Deterministic in ``mask_seed``."""
    if len(layers) != len(densities):
        raise ValueError("one density per layer")
    g = torch.Generator().manual_seed(int(mask_seed))
    masks: dict[str, torch.Tensor] = {}
    for lay, d in zip(layers, densities):
        perm = torch.randperm(lay.numel, generator=g)
        flat = torch.zeros(lay.numel, dtype=torch.bool)
        flat[perm[: kept_count(d, lay.numel)]] = True
        masks[lay.name] = flat.view(lay.shape)
    return masks


def mask_hash(masks: Mapping[str, torch.Tensor], order: Iterable[str] | None = None) -> str:
    """sha256 over each mask's name, shape and packed bits (row-major), in ``order`` (default: sorted)."""
    h = hashlib.sha256()
    for name in order if order is not None else sorted(masks):
        m = masks[name]
        h.update(name.encode())
        h.update(str(tuple(m.shape)).encode())
        h.update(np.packbits(m.detach().cpu().numpy().astype(bool).ravel()).tobytes())
    return "sha256:" + h.hexdigest()


def check_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Raise UsageError unless every mask names a parameter of ``model`` and has its shape."""
    params = dict(model.named_parameters())
    for name, m in masks.items():
        if name not in params:
            raise UsageError(f"mask for {name!r} matches no parameter of the model")
        if tuple(params[name].shape) != tuple(m.shape):
            raise UsageError(
                f"mask {name!r} has shape {tuple(m.shape)}, weight has {tuple(params[name].shape)}"
            )


class MaskedParameters:
    """Keeps ``param * mask`` exact through training: weights, gradients and optimizer buffers.

    Call ``apply()`` once after init, ``mask_grads()`` after backward (and after any all-reduce), and
    ``after_step(optimizer)`` after every optimizer step. Multiplication by a 0/1 tensor in one fused
    ``_foreach_mul_`` per call keeps the overhead a few percent of a training step.
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
        check_masks(model, masks)
        params = dict(model.named_parameters())
        self.names = [n for n in masks if not bool(masks[n].all())]
        self.params = [params[n] for n in self.names]
        self.masks = [masks[n].to(device=params[n].device, dtype=params[n].dtype) for n in self.names]

    def __bool__(self) -> bool:
        return bool(self.params)

    @torch.no_grad()
    def apply(self) -> None:
        """Zero the masked-out weights in place."""
        if self.params:
            torch._foreach_mul_([p.data for p in self.params], self.masks)

    @torch.no_grad()
    def mask_grads(self) -> None:
        """Zero the gradients of masked-out weights in place."""
        pairs = [(p.grad, m) for p, m in zip(self.params, self.masks) if p.grad is not None]
        if pairs:
            torch._foreach_mul_([g for g, _ in pairs], [m for _, m in pairs])

    @torch.no_grad()
    def after_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Re-apply the masks to weights and to the optimizer's momentum/Adam buffers after a step."""
        self.apply()
        bufs, ms = [], []
        for p, m in zip(self.params, self.masks):
            state = optimizer.state.get(p, {})
            for key in ("momentum_buffer", "exp_avg", "exp_avg_sq"):
                buf = state.get(key)
                if isinstance(buf, torch.Tensor) and buf.shape == m.shape:
                    bufs.append(buf)
                    ms.append(m)
        if bufs:
            torch._foreach_mul_(bufs, ms)
