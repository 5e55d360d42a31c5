"""ResNet (He, Zhang, Ren and Sun, 2016, "Deep residual learning for image recognition"), as
the course builds it (lecture 29, d2l "Residual Networks (ResNet)").

The course's residual block: two 3x3 convolutions with batch norm, and a 1x1 convolution on
the shortcut where the shape changes (the paper's option B, without a norm on the shortcut,
as in the course). ResNet-18 and -34 stack basic blocks; ResNet-50 stacks bottleneck blocks
(1x1 reduce, 3x3, 1x1 expand by 4) with the same shortcut rule. The ImageNet stem (7x7/2
conv, 3x3/2 max pool) is the course's and works at any size (at 32x32 the last stage is
1x1); ``stem="cifar"`` swaps it for a 3x3/1 conv without pooling, the usual choice for
32x32 inputs (four times the spatial size at every stage, much better accuracy on CIFAR).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from zoo.core.errors import ConfigError
from zoo.models.registry import register_model


class Residual(nn.Module):
    """The course's basic block: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = _shortcut(in_channels, channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))  # (B, channels, H/stride, W/stride)
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet-50's block: 1x1 to ``channels``, 3x3 (strided), 1x1 to ``4 * channels``."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out, 1)
        self.bn3 = nn.BatchNorm2d(out)
        self.shortcut = _shortcut(in_channels, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))  # (B, channels, H/stride, W/stride)
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride)  # the course's use_1x1conv


class ResNet(nn.Module):
    """Stem, four stages of ``blocks[i]`` blocks (widths ``width * 2**i``; every stage but the
    first halves the size), global average pooling and a linear classifier.

    Args:
        blocks: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        block: ``Residual`` or ``Bottleneck``.
        width: channels of the first stage (64 in the paper and course).
        stem: ``imagenet`` (the course's 7x7/2 conv and max pool) or ``cifar`` (3x3/1 conv).
    """

    def __init__(
        self,
        blocks: Sequence[int],
        block: type[Residual] | type[Bottleneck] = Residual,
        num_classes: int = 10,
        in_channels: int = 1,
        width: int = 64,
        stem: Literal["imagenet", "cifar"] = "imagenet",
    ) -> None:
        super().__init__()
        if stem == "imagenet":
            layers: list[nn.Module] = [
                nn.Conv2d(in_channels, width, 7, stride=2, padding=3), nn.BatchNorm2d(width), nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            ]  # fmt: skip
        elif stem == "cifar":
            layers = [nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        else:
            raise ConfigError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        c = width
        for i, n in enumerate(blocks):
            channels = width * 2**i
            for j in range(n):
                layers.append(block(c, channels, stride=2 if i > 0 and j == 0 else 1))
                c = channels * block.expansion
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))  # (B, C, H, W) -> (B, c) -> (B, classes)


@register_model
def resnet18(num_classes: int = 10, in_channels: int = 1, **kwargs) -> ResNet:
    """The course's ResNet-18: basic blocks (2, 2, 2, 2)."""
    return ResNet((2, 2, 2, 2), Residual, num_classes, in_channels, **kwargs)


@register_model
def resnet34(num_classes: int = 10, in_channels: int = 1, **kwargs) -> ResNet:
    """ResNet-34: basic blocks (3, 4, 6, 3)."""
    return ResNet((3, 4, 6, 3), Residual, num_classes, in_channels, **kwargs)


@register_model
def resnet50(num_classes: int = 10, in_channels: int = 1, **kwargs) -> ResNet:
    """ResNet-50: bottleneck blocks (3, 4, 6, 3), 2048 features."""
    return ResNet((3, 4, 6, 3), Bottleneck, num_classes, in_channels, **kwargs)
