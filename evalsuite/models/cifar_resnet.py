"""The CIFAR ResNet of He et al. (2016, section 4.2): depth 6n+2, three stages of n BasicBlocks.

Module names follow the akamaster/pytorch_resnet_cifar10 checkpoints (conv1, bn1, layer1..3, linear; per
block conv1, bn1, conv2, bn2, shortcut), so those load with ``strict=True`` into ``shortcut="A"``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evalsuite.core.errors import UsageError
from evalsuite.models.zoo import MODELS

SHORTCUTS = ("A", "B")


class ShortcutA(nn.Module):
    """Parameter-free shortcut: spatial subsampling by ``stride`` and zero channels padded on both sides.

    The input channels sit in the middle of the output (zeros split evenly before and after), which is the
    layout the akamaster checkpoints were trained with.
    """

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        if planes < in_planes:
            raise ValueError(f"option A cannot reduce channels ({in_planes} -> {planes})")
        self.stride = stride
        self.pad_before = (planes - in_planes) // 2
        self.pad_after = planes - in_planes - self.pad_before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Subsample [B, C, H, W] by ``stride`` and zero-pad channels: -> [B, planes, H/s, W/s]."""
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_before, self.pad_after))

    def extra_repr(self) -> str:
        """The stride and channel padding, for the module's repr."""
        return f"stride={self.stride}, pad=({self.pad_before}, {self.pad_after})"


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut, ReLU after the sum (the original, post-activation block)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "B") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module
        if stride == 1 and in_planes == planes:
            self.shortcut = nn.Identity()
        elif shortcut == "A":
            self.shortcut = ShortcutA(in_planes, planes, stride)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block output: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images: [B, in_channels, H, W] -> logits [B, num_classes]; any H, W."""

    def __init__(
        self,
        depth: int = 20,
        num_classes: int = 10,
        in_channels: int = 3,
        width: int = 16,
        shortcut: str = "B",
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise UsageError(f"CIFAR ResNet depth must be 6n+2 with n >= 1, got {depth}")
        if shortcut not in SHORTCUTS:
            raise UsageError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        if width < 1:
            raise UsageError(f"width must be a positive integer, got {width}")
        n = (depth - 2) // 6
        self.depth, self.width, self.shortcut_option = depth, width, shortcut
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.in_planes = width
        self.layer1 = self._make_layer(width, n, 1, shortcut)
        self.layer2 = self._make_layer(2 * width, n, 2, shortcut)
        self.layer3 = self._make_layer(4 * width, n, 2, shortcut)
        self.linear = nn.Linear(4 * width, num_classes)
        kaiming_init(self)

    def _make_layer(self, planes: int, blocks: int, stride: int, shortcut: str) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s, shortcut))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, num_classes] for images [B, in_channels, H, W]."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return self.linear(out)


def kaiming_init(net: nn.Module) -> None:
    """He-normal conv (fan-out) and linear (fan-in) weights, zero linear bias; BN keeps its (1, 0) default."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            nn.init.zeros_(m.bias)


def _register(depth: int) -> None:
    name = f"resnet{depth}"

    def factory(
        num_classes: int = 10, in_channels: int = 3, width: int = 16, shortcut: str = "B"
    ) -> nn.Module:
        return CifarResNet(depth, num_classes, in_channels, width, shortcut)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"CIFAR ResNet-{depth} (He et al. 2016)."
    MODELS.add(
        name,
        factory,
        f"CIFAR ResNet-{depth}, {(depth - 2) // 6} blocks/stage (kwargs: width=16, shortcut='B'|'A')",
    )


for _depth in (20, 32, 44, 56, 110):
    _register(_depth)
