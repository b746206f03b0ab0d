"""Normalization as the model's first layer, so every model takes images in [0, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn


class Normalize(nn.Module):
    """(x - mean) / std per channel; mean/std are buffers so they travel with the state_dict."""

    # declared for the type checker only (register_buffer makes them attributes at run time); a class-level
    # annotation would reach TorchScript, which cannot resolve it under `from __future__ import annotations`
    if TYPE_CHECKING:
        mean: torch.Tensor
        std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels but std has {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {list(std)}")
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel (x - mean) / std of x [B, C, H, W]; same shape."""
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        """The mean and std, for the module's repr."""
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


class NormalizedModel(nn.Module):
    """``net(normalize(x))``: the wrapper every zoo model and loaded checkpoint is returned in."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the wrapped net on normalized x; x [B, C, H, W] in [0, 1]."""
        return self.net(self.normalize(x))
