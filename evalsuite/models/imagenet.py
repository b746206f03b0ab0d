"""torchvision's ImageNet architectures, architecture only: built with ``weights=None``, never downloaded."""

from __future__ import annotations

from typing import Any

from torch import nn

from evalsuite.core.errors import UsageError
from evalsuite.models.zoo import MODELS

ARCHS = ("resnet18", "resnet50", "wide_resnet50_2")


def build_torchvision(name: str, num_classes: int, in_channels: int, **kwargs: Any) -> nn.Module:
    """Untrained torchvision ``name``; extra kwargs go to its constructor (unknown ones: TypeError)."""
    if in_channels != 3:
        raise UsageError(
            f"{name} is torchvision's RGB architecture; in_channels must be 3, got {in_channels}"
        )
    if "weights" in kwargs:
        # Pretrained weights would mean a download; checkpoints come in through the loaders instead.
        raise UsageError(f"{name}: the zoo builds architectures only, 'weights' is not accepted")
    import torchvision  # only when one is built: importing torchvision costs a second and more

    return torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)


def _register(name: str) -> None:
    def factory(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> nn.Module:
        return build_torchvision(name, num_classes, in_channels, **kwargs)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"torchvision {name}, untrained."
    MODELS.add(name, factory, f"torchvision ImageNet {name}, untrained (kwargs go to its constructor)")


for _name in ARCHS:
    _register(_name)
