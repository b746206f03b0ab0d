"""Small networks: the default for the embedded digits set, and tiny ones for tests."""

from __future__ import annotations

import torch
from torch import nn

from evalsuite.models.zoo import MODELS


class SmallCNN(nn.Module):
    """Three 3x3 conv layers with BN, then a linear head. ~25k parameters at width 16; any input size."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(in_channels, w, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.conv2 = nn.Conv2d(w, 2 * w, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * w)
        self.conv3 = nn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * w)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, num_classes] for images [B, in_channels, H, W]."""
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        x = torch.relu(self.bn3(self.conv3(x)))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class TinyMLP(nn.Module):
    """Flatten, one hidden layer, linear head: the fastest model for tests."""

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, image_size: int = 8, hidden: int = 32
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_channels * image_size * image_size, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, num_classes] for images [B, in_channels, image_size, image_size]."""
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


@MODELS.register("smallcnn", help="3-conv BN net, the default for the embedded digits (kwargs: width=16)")
def smallcnn(num_classes: int = 10, in_channels: int = 1, width: int = 16) -> nn.Module:
    """SmallCNN: three conv-BN layers and a linear head."""
    return SmallCNN(num_classes, in_channels, width)


@MODELS.register("test_mlp", help="tiny MLP for tests (kwargs: image_size=8, hidden=32)")
def test_mlp(num_classes: int = 10, in_channels: int = 1, image_size: int = 8, hidden: int = 32) -> nn.Module:
    """TinyMLP: one hidden layer, for tests."""
    return TinyMLP(num_classes, in_channels, image_size, hidden)
