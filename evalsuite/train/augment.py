"""Batch augmentation on the device: no per-image PIL transforms, no DataLoader workers."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop_flip(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Random crop after zero-padding by ``padding`` and a horizontal flip with p=0.5, per example.

    ``x``: ``[B, C, H, W]`` on any device, any dtype. Random numbers come from ``gen`` on the CPU, so a
    CPU and a GPU run draw the same crops.
    """
    b, _, h, w = x.shape
    offs = torch.randint(0, 2 * padding + 1, (2, b), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    dev = x.device
    xp = F.pad(x, (padding, padding, padding, padding))
    rows = (offs[0][:, None] + torch.arange(h)).to(dev)
    cols = (offs[1][:, None] + torch.arange(w)).to(dev)
    # advanced indexing around a sliced channel dim puts the indexed dims first: [B, H, W, C]
    out = xp[torch.arange(b, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    out = out.permute(0, 3, 1, 2)
    out = torch.where(flip.to(dev)[:, None, None, None], out.flip(3), out)
    return out.contiguous()
