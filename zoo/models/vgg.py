"""VGG (Simonyan and Zisserman, 2015, "Very deep convolutional networks for large-scale image
recognition"), as the course builds it (lecture 25, d2l "Networks Using Blocks (VGG)").

A VGG block is ``n`` 3x3 convolutions (padding 1) with ReLU, then a 2x2 max pool. VGG-11 has
the blocks ``((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))``; the course trains a narrow
variant with every block's channels divided by 4 (``width_div=4``, registered as
``vgg11_narrow``). Five halvings need inputs of at least 32x32, so CIFAR-10 works as is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from zoo.models import weights as pretrained
from zoo.models.common import check_size, dense_head, flat_features
from zoo.models.registry import register_model

VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
        in_channels = out_channels
    return nn.Sequential(*layers, nn.MaxPool2d(kernel_size=2, stride=2))


class VGG(nn.Module):
    """VGG blocks from ``arch`` (``(num_convs, channels)`` pairs), then AlexNet's classifier.

    Args:
        arch: the blocks; VGG-11 by default.
        width_div: divide every block's channels by this (the course's narrow VGG uses 4).
        image_size: input side length; sizes the first linear layer (at least 32).
        hidden: width of the two fully connected layers.
        dropout: dropout probability after each of them.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        arch: Sequence[Sequence[int]] = VGG11,
        width_div: int = 1,
        image_size: int = 224,
        hidden: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        blocks, c = [], in_channels
        for num_convs, channels in arch:
            blocks.append(vgg_block(num_convs, c, channels // width_div))
            c = channels // width_div
        self.features = nn.Sequential(*blocks, nn.Flatten())
        width = flat_features(self.features, in_channels, image_size, "vgg")
        self.classifier = dense_head(width, hidden, dropout, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size(x, self.image_size, "vgg")
        return self.classifier(self.features(x))  # (B, C, H, W) -> (B, c * H/32 * W/32) -> (B, classes)


@register_model
def vgg11(num_classes: int = 10, in_channels: int = 1, image_size: int = 224, width_div: int = 1, **kwargs) -> VGG:
    """VGG-11 ("configuration A"); ``width_div=4`` is the course's narrow variant."""
    return VGG(num_classes, in_channels, VGG11, width_div=width_div, image_size=image_size, **kwargs)


@register_model
def vgg11_narrow(
    num_classes: int = 10, in_channels: int = 1, image_size: int = 224, width_div: int = 4, **kwargs
) -> VGG:
    """The course's VGG-11 with channels divided by 4 (what lecture 25 trains)."""
    return vgg11(num_classes, in_channels, image_size, width_div, **kwargs)


def vgg19_features(weights: str | None, last_layer: int = 28) -> nn.Sequential:
    """``torchvision.models.vgg19().features`` up to ``last_layer`` (style transfer's last: 28),
    frozen, in eval mode, without the 120M-weight classifier; ``weights`` any form
    ``zoo.models.weights`` reads (``IMAGENET1K_V1``: ``vgg19-dcbb9e9d.pth`` in torch hub's
    cache, or a file of torchvision's layout), ``None``: PyTorch's random initialisation."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["E"], batch_norm=False)[: last_layer + 1]
    if weights is not None:
        pretrained.load_into(features, weights, "vgg19", adapt_stem=False)  # keys features.<i>.*
    return features.eval().requires_grad_(False)
