"""Random pruning at initialization: layer-wise density schemes, exact-count masks, audit.

density = fraction of prunable weights kept; prunable = every conv and linear weight; BN and biases dense.
"""

from evalsuite.sparsity.audit import density_report
from evalsuite.sparsity.layers import PrunableLayer, prunable_layers
from evalsuite.sparsity.masks import MaskedParameters, check_masks, draw_masks, kept_count, mask_hash
from evalsuite.sparsity.prune import SparsityPlan, prune_at_init
from evalsuite.sparsity.schemes import SCHEMES, SchemeContext, check_density, layer_densities

__all__ = [
    "SCHEMES",
    "MaskedParameters",
    "PrunableLayer",
    "SchemeContext",
    "SparsityPlan",
    "check_density",
    "check_masks",
    "density_report",
    "draw_masks",
    "kept_count",
    "layer_densities",
    "mask_hash",
    "prunable_layers",
    "prune_at_init",
]
