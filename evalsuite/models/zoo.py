"""The model registry and ``create_model``.

A registered factory builds the bare network ``factory(num_classes=..., in_channels=..., **kwargs)``;
``create_model`` wraps it with the dataset's normalization so it takes images in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from evalsuite.core.errors import UsageError
from evalsuite.core.registry import Registry
from evalsuite.models.normalize import NormalizedModel

ModelFactory = Callable[..., nn.Module]

MODELS: Registry[ModelFactory] = Registry("model")


def create_model(
    arch: str,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    in_channels: int | None = None,
    **kwargs: Any,
) -> NormalizedModel:
    """Build ``arch`` from the zoo, wrapped with normalization. Unknown kwargs are a UsageError."""
    factory = MODELS.get(arch)
    channels = len(mean) if in_channels is None else in_channels
    try:
        net = factory(num_classes=num_classes, in_channels=channels, **kwargs)
    except TypeError as e:
        raise UsageError(f"model {arch!r}: bad arguments {kwargs}: {e}") from None
    return NormalizedModel(net, mean, std)
