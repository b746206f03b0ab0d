"""Realized density of a model: from its weights (exact zeros) and, where given, its stored masks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from evalsuite.core.errors import UsageError
from evalsuite.sparsity.layers import PrunableLayer


def density_report(
    model: nn.Module, layers: Sequence[PrunableLayer], masks: Mapping[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """Per-layer and global density (nonzero weights / weights), and masked-weight leaks.

    Returns plain data: ``layers`` (name -> {numel, nonzero, density, mask_density, macs_dense,
    macs_sparse}), ``density`` (global, from the weights), ``mask_density`` (global, from masks, or None),
    ``masked_nonzero`` (weights outside the mask that are not zero: should be 0), totals of parameters.
    """
    params = dict(model.named_parameters())
    unknown = sorted(k for k in (masks or {}) if k not in params)
    if unknown:
        # a mask that matches no weight would silently count its layer as dense
        raise UsageError(
            f"masks for {len(unknown)} unknown layer(s) (e.g. {', '.join(unknown[:3])}); "
            f"prunable weights are e.g. {', '.join(lay.name for lay in layers[:3])}"
        )
    per: dict[str, dict[str, Any]] = {}
    total = nonzero = kept = leaks = 0
    macs_dense = macs_sparse = 0
    for lay in layers:
        w = params[lay.name].detach()
        nz = int(torch.count_nonzero(w))
        entry: dict[str, Any] = {"numel": lay.numel, "nonzero": nz, "density": nz / lay.numel}
        m = masks.get(lay.name) if masks else None
        if m is not None:
            mk = int(m.sum())
            entry["mask_density"] = mk / lay.numel
            leak = int(torch.count_nonzero(w[~m.to(w.device, torch.bool)]))
            entry["masked_nonzero"] = leak
            kept += mk
            leaks += leak
        else:
            kept += lay.numel if not masks else nz
        entry["macs_dense"] = lay.numel * lay.out_positions
        entry["macs_sparse"] = nz * lay.out_positions
        macs_dense += entry["macs_dense"]
        macs_sparse += entry["macs_sparse"]
        per[lay.name] = entry
        total += lay.numel
        nonzero += nz
    all_params = sum(p.numel() for p in model.parameters())
    all_nonzero = sum(int(torch.count_nonzero(p.detach())) for p in model.parameters())
    return {
        "layers": per,
        "prunable_params": total,
        "prunable_nonzero": nonzero,
        "density": nonzero / total if total else 1.0,
        "mask_density": (kept / total if total else 1.0) if masks else None,
        "masked_nonzero": leaks if masks else None,
        "params": all_params,
        "nonzero_params": all_nonzero,
        "macs_dense": macs_dense,
        "macs_sparse": macs_sparse,
    }
