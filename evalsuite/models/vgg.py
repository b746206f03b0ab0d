"""VGG-16/19 with batch norm for 32x32 images: five conv stages, 512 features, one linear classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evalsuite.core.errors import UsageError
from evalsuite.models.cifar_resnet import kaiming_init
from evalsuite.models.zoo import MODELS

# Simonyan & Zisserman's configurations D and E; "M" is a 2x2 max-pool.
CFGS: dict[int, list[int | str]] = {
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


class VGG(nn.Module):
    """[B, in_channels, 32, 32] -> logits [B, num_classes]; other sizes go through a global average pool."""

    def __init__(
        self, depth: int = 16, num_classes: int = 10, in_channels: int = 3, width: float = 1.0
    ) -> None:
        super().__init__()
        if depth not in CFGS:
            raise UsageError(f"VGG depth must be one of {sorted(CFGS)}, got {depth}")
        if width <= 0:
            raise UsageError(f"width must be positive, got {width}")
        layers: list[nn.Module] = []
        channels = in_channels
        for v in CFGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out = max(1, round(int(v) * width))
            # No conv bias: the BN right after it has its own shift.
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, num_classes] for images [B, in_channels, H, W]."""
        # At 32x32 the features are already 1x1; the pool only matters for larger inputs.
        out = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return self.classifier(out)


@MODELS.register("vgg16", help="VGG-16 with BN for 32x32 inputs, 14.7M params at width 1 (kwargs: width=1.0)")
def vgg16(num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> nn.Module:
    """VGG-16-BN (configuration D)."""
    return VGG(16, num_classes, in_channels, width)


@MODELS.register("vgg19", help="VGG-19 with BN for 32x32 inputs, 20.0M params at width 1 (kwargs: width=1.0)")
def vgg19(num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> nn.Module:
    """VGG-19-BN (configuration E)."""
    return VGG(19, num_classes, in_channels, width)
