"""DenseNet (Huang, Liu, van der Maaten and Weinberger, 2017, "Densely connected convolutional
networks"), as the course builds it (book 7.7, d2l "Densely Connected Networks (DenseNet)").

A dense block's convolutions (BN -> ReLU -> 3x3 conv, ``growth_rate`` channels each) see the
concatenation of all earlier outputs; a transition block (BN -> ReLU -> 1x1 conv halving the
channels -> 2x2 average pool) sits between dense blocks. The course uses ResNet's stem, four
dense blocks of four convolutions and growth rate 32. Its three 2x2 pools after the stride-4
stem need inputs of at least 29x29 (CIFAR's 32x32 works; the last block is then 1x1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from zoo.models.registry import register_model


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1)
    )


class DenseBlock(nn.Module):
    """``num_convs`` conv blocks, each fed the concatenation of the input and all earlier outputs."""

    def __init__(self, num_convs: int, in_channels: int, growth_rate: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            conv_block(in_channels + i * growth_rate, growth_rate) for i in range(num_convs)
        )
        self.out_channels = in_channels + num_convs * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = torch.cat([x, conv(x)], dim=1)  # (B, C + growth, H, W)
        return x


def transition_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.BatchNorm2d(in_channels),
        nn.ReLU(),
        nn.Conv2d(in_channels, out_channels, 1),
        nn.AvgPool2d(2, stride=2),
    )


class DenseNet(nn.Module):
    """ResNet's stem, dense blocks with halving transitions between them, BN -> ReLU, global
    average pooling and a linear classifier.

    Args:
        blocks: convolutions per dense block.
        growth_rate: channels each convolution adds.
        width: channels of the stem.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        blocks: Sequence[int] = (4, 4, 4, 4),
        growth_rate: int = 32,
        width: int = 64,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 7, stride=2, padding=3), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        ]  # fmt: skip
        c = width
        for i, n in enumerate(blocks):
            dense = DenseBlock(n, c, growth_rate)
            layers.append(dense)
            c = dense.out_channels
            if i != len(blocks) - 1:
                layers.append(transition_block(c, c // 2))
                c //= 2
        self.features = nn.Sequential(
            *layers, nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))  # (B, C, H, W) -> (B, c) -> (B, classes)


@register_model
def densenet(num_classes: int = 10, in_channels: int = 1, **kwargs) -> DenseNet:
    """The course's DenseNet: four dense blocks of four convolutions, growth rate 32."""
    return DenseNet(num_classes=num_classes, in_channels=in_channels, **kwargs)
