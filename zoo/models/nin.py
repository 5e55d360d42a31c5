"""Network in Network (Lin, Chen and Yan, 2014), as the course builds it (lecture 26,
d2l "Network in Network (NiN)").

Each NiN block is a convolution followed by two 1x1 convolutions (a per-pixel MLP); the last
block outputs one channel per class and global average pooling replaces the dense layers.
It does NOT work at CIFAR's 32x32: the stride-4 11x11 convolution and three 3x3/2 max pools
need inputs of at least 67x67 (the course resizes to 224).
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.models.registry import register_model


def nin_block(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )  # fmt: skip


class NiN(nn.Module):
    """Four NiN blocks (96, 256, 384, ``num_classes`` channels) with 3x3/2 max pools between,
    dropout before the last, then global average pooling to the logits."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.5) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nin_block(in_channels, 96, kernel_size=11, stride=4, padding=0),
            nn.MaxPool2d(3, stride=2),
            nin_block(96, 256, kernel_size=5, stride=1, padding=2),
            nn.MaxPool2d(3, stride=2),
            nin_block(256, 384, kernel_size=3, stride=1, padding=1),
            nn.MaxPool2d(3, stride=2),
            nn.Dropout(dropout),
            nin_block(384, num_classes, kernel_size=3, stride=1, padding=1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, C, H, W) -> (B, classes, h, w) -> (B, classes)


@register_model
def nin(num_classes: int = 10, in_channels: int = 1, **kwargs) -> NiN:
    """The course's NiN for 224x224 inputs (at least 67x67)."""
    return NiN(num_classes=num_classes, in_channels=in_channels, **kwargs)
