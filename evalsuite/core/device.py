"""Device choice, shared by training and the battery (imports torch; not re-exported by core)."""

from __future__ import annotations

import torch

from evalsuite.core.errors import UsageError


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU; an explicit ``cuda`` without CUDA is a usage error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda requested but CUDA is not available")
    return dev


def device_name(device: torch.device) -> str:
    """The CUDA device's name, or ``"cpu"`` for any non-CUDA device."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
