"""GoogLeNet / Inception v1 (Szegedy et al., 2015, "Going deeper with convolutions"), as the
course builds it (lecture 27, d2l "Multi-Branch Networks (GoogLeNet)").

Nine Inception blocks in five stages; no auxiliary classifiers, no local response
normalisation; one linear layer after global average pooling. The course trains it on
Fashion-MNIST resized to 96x96. Every pool pads, so it runs at any input size (32x32 for
CIFAR-10 reaches the last stage at 1x1).
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.models.registry import register_model


class Inception(nn.Module):
    """Four parallel paths concatenated on channels: 1x1; 1x1 -> 3x3; 1x1 -> 5x5;
    3x3 max pool -> 1x1. ``c2`` and ``c3`` are ``(reduce, out)`` channel pairs."""

    def __init__(self, in_channels: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int) -> None:
        super().__init__()
        self.p1 = nn.Sequential(nn.Conv2d(in_channels, c1, 1), nn.ReLU())
        self.p2 = nn.Sequential(
            nn.Conv2d(in_channels, c2[0], 1), nn.ReLU(), nn.Conv2d(c2[0], c2[1], 3, padding=1), nn.ReLU()
        )
        self.p3 = nn.Sequential(
            nn.Conv2d(in_channels, c3[0], 1), nn.ReLU(), nn.Conv2d(c3[0], c3[1], 5, padding=2), nn.ReLU()
        )
        self.p4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(in_channels, c4, 1), nn.ReLU()
        )
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.p1(x), self.p2(x), self.p3(x), self.p4(x)], dim=1)  # (B, out, H, W)


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(3, stride=2, padding=1)


class GoogLeNet(nn.Module):
    """Stem (7x7/2 conv, pool, 1x1 and 3x3 convs, pool), Inception stages 3 (2 blocks),
    4 (5 blocks) and 5 (2 blocks), global average pooling and a linear classifier."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, stride=2, padding=3), nn.ReLU(), _pool(),
            nn.Conv2d(64, 64, 1), nn.ReLU(), nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(), _pool(),
            Inception(192, 64, (96, 128), (16, 32), 32),
            Inception(256, 128, (128, 192), (32, 96), 64), _pool(),
            Inception(480, 192, (96, 208), (16, 48), 64),
            Inception(512, 160, (112, 224), (24, 64), 64),
            Inception(512, 128, (128, 256), (24, 64), 64),
            Inception(512, 112, (144, 288), (32, 64), 64),
            Inception(528, 256, (160, 320), (32, 128), 128), _pool(),
            Inception(832, 256, (160, 320), (32, 128), 128),
            Inception(832, 384, (192, 384), (48, 128), 128),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))  # (B, C, H, W) -> (B, 1024) -> (B, classes)


@register_model
def googlenet(num_classes: int = 10, in_channels: int = 1) -> GoogLeNet:
    """The course's GoogLeNet (Inception v1 without auxiliary heads)."""
    return GoogLeNet(num_classes=num_classes, in_channels=in_channels)
