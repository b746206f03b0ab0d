"""One forward pass per dataset: logits for every example, in batches sized for the device."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from evalsuite.data import ImageSet


def default_batch_size(device: torch.device) -> int:
    """The default prediction batch size: 1024 on CUDA, 500 otherwise."""
    return 1024 if device.type == "cuda" else 500


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    data: ImageSet,
    device: torch.device,
    batch_size: int | None = None,
    progress: object | None = None,
) -> np.ndarray:
    """float32 logits ``[N, K]`` of ``model`` (eval mode) on ``data``, in data order."""
    model.eval()
    bs = batch_size or default_batch_size(device)
    out = []
    for start in range(0, len(data), bs):
        x = data.images(slice(start, start + bs)).to(device, non_blocking=True)
        out.append(model(x).float().cpu())
        if progress is not None:
            progress.update(int(x.shape[0]))  # type: ignore[attr-defined]
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(out).numpy()
