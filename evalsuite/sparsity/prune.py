"""One call from a freshly initialized model to its randomly pruned version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from evalsuite.sparsity.layers import PrunableLayer, prunable_layers
from evalsuite.sparsity.masks import MaskedParameters, draw_masks, mask_hash
from evalsuite.sparsity.schemes import SchemeContext, layer_densities


@dataclass(frozen=True)
class SparsityPlan:
    """Scheme, target and realized densities, the masks (True = kept) and their hash."""

    scheme: str
    target_density: float
    mask_seed: int
    layers: tuple[PrunableLayer, ...]
    layer_targets: tuple[float, ...]
    masks: dict[str, torch.Tensor]

    @property
    def hash(self) -> str:
        """Hash of the masks in layer order."""
        return mask_hash(self.masks, [lay.name for lay in self.layers])

    @property
    def realized_density(self) -> float:
        """Fraction of prunable weights the masks keep, over all layers."""
        kept = sum(int(self.masks[lay.name].sum()) for lay in self.layers)
        return kept / sum(lay.numel for lay in self.layers)

    def card(self) -> dict[str, Any]:
        """The plain-data sparsity record stored in checkpoints."""
        return {
            "scheme": self.scheme,
            "target_density": self.target_density,
            "realized_density": self.realized_density,
            "mask_seed": self.mask_seed,
            "mask_hash": self.hash,
            "convention": "density = fraction of conv and linear weights kept; BN and biases dense",
            "layers": [
                {
                    "name": lay.name,
                    "shape": list(lay.shape),
                    "target_density": d,
                    "kept": int(self.masks[lay.name].sum()),
                    "numel": lay.numel,
                    "density": int(self.masks[lay.name].sum()) / lay.numel,
                }
                for lay, d in zip(self.layers, self.layer_targets)
            ],
        }


def prune_at_init(
    model: nn.Module,
    example: torch.Tensor,
    scheme: str,
    density: float,
    mask_seed: int,
    ctx: SchemeContext | None = None,
) -> SparsityPlan:
    """Draw exact-count random masks for ``scheme`` at ``density`` and zero the pruned weights in place.

    ``example``: a batch shaped like the input (``[1, C, H, W]``) to find layers in graph order.
    ``ctx``: model and data batch for the data-driven ratios (snip, grasp); its model defaults to ``model``.
    """
    layers = prunable_layers(model, example)
    if ctx is not None and ctx.model is None:
        ctx.model = model
    targets = layer_densities(scheme, layers, density, ctx)
    masks = draw_masks(layers, targets, mask_seed)
    MaskedParameters(model, masks).apply()
    return SparsityPlan(scheme, float(density), int(mask_seed), tuple(layers), tuple(targets), masks)
