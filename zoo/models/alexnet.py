"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012, "ImageNet classification with deep
convolutional neural networks"), as the course builds it (lecture 24, d2l "AlexNet").

One tower instead of the paper's two GPUs, no local response normalisation; 224x224 inputs.
It does NOT work at CIFAR's 32x32: the stride-4 11x11 convolution and three 3x3/2 max pools
need inputs of at least 65x65 (resize CIFAR up, as the course does for Fashion-MNIST).
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.models.common import check_size, dense_head, flat_features
from zoo.models.registry import register_model


class AlexNet(nn.Module):
    """Five convolutions (96, 256, 384, 384, 256 channels) and three max pools, then two
    dropout-regularised 4096-unit layers.

    Args:
        image_size: input side length; sizes the first linear layer (at least 65).
        hidden: width of the two fully connected layers.
        dropout: dropout probability after each of them.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 224,
        hidden: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Flatten(),
        )  # fmt: skip
        width = flat_features(self.features, in_channels, image_size, "alexnet")
        self.classifier = dense_head(width, hidden, dropout, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size(x, self.image_size, "alexnet")
        return self.classifier(self.features(x))  # (B, C, H, W) -> (B, 256 * 5 * 5) -> (B, classes)


@register_model
def alexnet(num_classes: int = 10, in_channels: int = 1, image_size: int = 224, **kwargs) -> AlexNet:
    """The course's AlexNet for 224x224 inputs (Fashion-MNIST resized)."""
    return AlexNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
