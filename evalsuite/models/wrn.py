"""Wide ResNet-28-k (Zagoruyko & Komodakis 2016): pre-activation blocks, widths 16, 16k, 32k, 64k."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evalsuite.core.errors import UsageError
from evalsuite.models.cifar_resnet import kaiming_init
from evalsuite.models.zoo import MODELS


class WideBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-dropout-conv3x3, plus the input (or a 1x1 projection where shapes change)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut: nn.Module
        if stride == 1 and in_planes == planes:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation block output, same batch size; [B, planes, H/stride, W/stride]."""
        act = F.relu(self.bn1(x))
        out = F.relu(self.bn2(self.conv1(act)))
        out = self.conv2(self.dropout(out))
        # The projection sees the pre-activated input, as in the authors' code; identity adds the raw x.
        skip = x if isinstance(self.shortcut, nn.Identity) else self.shortcut(act)
        return out + skip


class WideResNet(nn.Module):
    """WRN-depth-k: [B, in_channels, H, W] -> logits [B, num_classes]."""

    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        num_classes: int = 10,
        in_channels: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise UsageError(f"WRN depth must be 6n+4 with n >= 1, got {depth}")
        if widen_factor < 1:
            raise UsageError(f"widen_factor must be a positive integer, got {widen_factor}")
        if not 0.0 <= dropout < 1.0:
            raise UsageError(f"dropout must be in [0, 1), got {dropout}")
        n = (depth - 4) // 6
        widths = [16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        in_planes = 16
        stages = []
        for planes, stride in zip(widths, (1, 2, 2), strict=True):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(WideBlock(in_planes, planes, s, dropout))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn = nn.BatchNorm2d(in_planes)
        self.linear = nn.Linear(in_planes, num_classes)
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, num_classes] for images [B, in_channels, H, W]."""
        out = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        out = F.relu(self.bn(out))
        out = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return self.linear(out)


@MODELS.register("wrn28", help="Wide ResNet-28-k, pre-activation (kwargs: widen_factor=10, dropout=0.0)")
def wrn28(
    num_classes: int = 10, in_channels: int = 3, widen_factor: int = 10, dropout: float = 0.0
) -> nn.Module:
    """WRN-28-k."""
    return WideResNet(28, widen_factor, num_classes, in_channels, dropout)


@MODELS.register("wrn28_2", help="Wide ResNet-28-2, 1.47M params (kwargs: dropout=0.0)")
def wrn28_2(num_classes: int = 10, in_channels: int = 3, dropout: float = 0.0) -> nn.Module:
    """WRN-28-2."""
    return WideResNet(28, 2, num_classes, in_channels, dropout)


@MODELS.register("wrn28_10", help="Wide ResNet-28-10, 36.5M params (kwargs: dropout=0.0)")
def wrn28_10(num_classes: int = 10, in_channels: int = 3, dropout: float = 0.0) -> nn.Module:
    """WRN-28-10."""
    return WideResNet(28, 10, num_classes, in_channels, dropout)
