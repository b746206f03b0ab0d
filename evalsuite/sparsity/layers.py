"""Prunable layers in graph (execution) order.

Prunable = every conv and linear weight, first and last layers and 1x1 shortcuts included; batch-norm
parameters and biases stay dense. "First" and "last" come from the order in which a forward pass calls
the layers, never from their names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

_PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class PrunableLayer:
    """One prunable weight. ``name`` is the parameter name in the model's state_dict (``net.conv1.weight``).

    ``fan_in``/``fan_out`` are channel counts (n_in, n_out); ``kernel`` the spatial kernel size (1, 1 for
    linear); ``out_positions`` how many output positions the layer computes per example (H_out * W_out
    for a conv, 1 for linear), so its multiply-accumulates per example are ``numel * out_positions``.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    kernel: tuple[int, ...]
    out_positions: int

    @property
    def numel(self) -> int:
        """Number of weights: the product of ``shape``."""
        n = 1
        for s in self.shape:
            n *= s
        return n


def prunable_layers(model: nn.Module, example: torch.Tensor) -> list[PrunableLayer]:
    """Conv and linear weights of ``model`` in the order a forward pass on ``example`` calls them.

    ``example`` is a small batch shaped like the model's input, e.g. ``torch.zeros(1, 3, 32, 32)``.
    Layers never called come last, in registration order, with ``out_positions`` 0.
    """
    module_names = {m: n for n, m in model.named_modules()}
    order: list[nn.Module] = []
    positions: dict[nn.Module, int] = {}

    def hook(mod: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        if mod not in positions:
            order.append(mod)
            positions[mod] = (
                int(out[0].numel() // out.shape[1])
                if isinstance(mod, nn.Conv2d | nn.Conv1d | nn.Conv3d)
                else 1
            )

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _PRUNABLE)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    for m in model.modules():
        if isinstance(m, _PRUNABLE) and m not in positions:
            order.append(m)
            positions[m] = 0

    layers = []
    for m in order:
        w = m.weight
        # nn.Module.__getattr__ is typed Tensor | Module; every _PRUNABLE layer's weight is a tensor
        assert isinstance(w, torch.Tensor)
        kernel: tuple[int, ...]
        prefix = module_names[m]
        name = f"{prefix}.weight" if prefix else "weight"
        if isinstance(m, nn.Linear):
            kind, kernel = "linear", (1, 1)
            fan_in, fan_out = int(w.shape[1]), int(w.shape[0])
        else:
            kind, kernel = "conv", tuple(int(k) for k in w.shape[2:])
            # grouped convs: each output channel sees in_channels / groups inputs
            fan_in, fan_out = int(w.shape[1]), int(w.shape[0])
        layers.append(
            PrunableLayer(name, kind, tuple(int(s) for s in w.shape), fan_in, fan_out, kernel, positions[m])
        )
    return layers
