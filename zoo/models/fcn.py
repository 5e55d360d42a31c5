"""Fully convolutional networks for semantic segmentation (Long, Shelhamer and Darrell, 2015,
"Fully Convolutional Networks for Semantic Segmentation"), as the course builds one (lecture 48,
d2l "Fully Convolutional Networks"), and torchvision's FCN-ResNet50 and DeepLabv3 (Chen et al.,
2017, "Rethinking Atrous Convolution for Semantic Image Segmentation") by name.

The course's FCN: ResNet-18 without its global pooling and classifier (a ``(B, 512, H/32, W/32)``
map), a 1x1 convolution to the classes and ``ConvTranspose2d(k=64, s=32, p=16)`` initialised
to bilinear upsampling. The backbone is the zoo's ResNet-18 (``backbone="zoo"``, from scratch
or from a zoo checkpoint) or torchvision's (``backbone="torchvision"``, whose ImageNet weights
the course starts from); ``weights=`` is any form ``zoo.models.weights`` reads (for the
torchvision backbone ``IMAGENET1K_V1``: ``resnet18-f37072fd.pth`` from torch hub's cache). Every
model returns logits ``(B, classes, H, W)`` at the input's size, for any size: the stride-32
upsampling gives ``32 * ceil(H / 32)`` rows, and the rows past ``H`` are cut (both keep pixel
``i`` aligned with input pixel ``i``).

torchvision's models are built with ``weights=None, weights_backbone=None`` (nothing is
downloaded) and without the auxiliary head; ``weights=`` takes torchvision's weights name
(``COCO_WITH_VOC_LABELS_V1``, from torch hub's cache), a local ``state_dict`` of the same model
(torchvision's own file, e.g. ``deeplabv3_resnet50_coco-cd0a2569.pth``) or a zoo checkpoint;
with another ``num_classes`` than the file's, the last classifier layer starts fresh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from zoo.core.errors import ConfigError
from zoo.models import weights as pretrained
from zoo.models.registry import register_model
from zoo.models.resnet import resnet18
from zoo.ops.transposed_conv import bilinear_kernel


class FCN(nn.Module):
    """``transpose_conv(final_conv(backbone(x)))``, cut to the input's size."""

    #: the bilinear initialisation (and loaded weights) must survive ZooTask.build_model
    keeps_weights = True
    #: one logit per class and pixel: (B, C, H, W) at the input's size (what tests/test_models.py checks)
    dense_output = True

    def __init__(self, backbone: nn.Module, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.final_conv = nn.Conv2d(num_features, num_classes, kernel_size=1)
        self.transpose_conv = nn.ConvTranspose2d(num_classes, num_classes, kernel_size=64, padding=16, stride=32)
        with torch.no_grad():
            self.transpose_conv.weight.copy_(bilinear_kernel(num_classes, num_classes, 64))
            self.transpose_conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.final_conv(self.backbone(x))  # (B, 3, H, W) -> (B, 512, ceil(H/32), ceil(W/32)) -> (B, C, ., .)
        return self.transpose_conv(y)[..., :h, :w]  # (B, C, 32 ceil(H/32), .) -> (B, C, H, W)


def _zoo_resnet18(in_channels: int, weights: str | None, **kwargs) -> tuple[nn.Module, int]:
    """The zoo's ResNet-18 whose forward returns its last feature map (pooling and classifier gone)."""
    net = resnet18(in_channels=in_channels, **kwargs)
    net.features = net.features[:-2]  # drop AdaptiveAvgPool2d and Flatten: keys stay features.<i>
    net.fc = nn.Identity()
    if weights:
        pretrained.load_into(net, weights)  # a zoo checkpoint's model.features.* (its fc is skipped)
    return net, net.features[-1].conv2.out_channels


def _torchvision_resnet18(in_channels: int, weights: str | None) -> tuple[nn.Module, int]:
    """torchvision's ResNet-18 without ``avgpool`` and ``fc``: the course's
    ``nn.Sequential(*list(pretrained_net.children())[:-2])``."""
    from torchvision.models import resnet18 as tv_resnet18

    net = tv_resnet18(weights=None)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
    net.fc = nn.Identity()
    if weights:
        pretrained.load_into(net, weights, "resnet18")  # IMAGENET1K_V1: resnet18-f37072fd.pth, its fc skipped
    return nn.Sequential(*list(net.children())[:-2]), 512


@register_model
def fcn_resnet18(
    num_classes: int = 21,
    in_channels: int = 3,
    backbone: Literal["zoo", "torchvision"] = "zoo",
    weights: str | None = None,
    **kwargs,
) -> FCN:
    """The course's FCN on ResNet-18.

    Args:
        backbone: ``zoo`` (``zoo.models.resnet.resnet18``; ``kwargs`` such as ``width`` go to it)
            or ``torchvision`` (``torchvision.models.resnet18``, the course's).
        weights: the backbone's weights: for ``torchvision``, ``IMAGENET1K_V1`` (torch hub's
            cache) or torchvision's ``resnet18`` state dict; for ``zoo``, a zoo ``resnet18`` checkpoint.
    """
    if backbone == "zoo":
        net, features = _zoo_resnet18(in_channels, weights, **kwargs)
    elif backbone == "torchvision":
        if kwargs:
            raise ConfigError(f"backbone='torchvision' takes no further arguments, got {sorted(kwargs)}")
        net, features = _torchvision_resnet18(in_channels, weights)
    else:
        raise ConfigError(f"backbone must be 'zoo' or 'torchvision', got {backbone!r}")
    return FCN(net, features, num_classes)


class TorchvisionSegmenter(nn.Module):
    """torchvision's ``backbone`` (a dict of feature maps) and ``classifier``, upsampled
    bilinearly to the input's size: torchvision's forward without the auxiliary head, returning
    the logits tensor rather than ``{"out": ...}``. The attribute names are torchvision's, so its
    weight files load as they are."""

    keeps_weights = True  # torchvision's own initialisation or the loaded weights
    dense_output = True

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.classifier = model.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)["out"]  # (B, 3, H, W) -> (B, F, H/8, W/8)
        y = self.classifier(features)  # (B, C, H/8, W/8)
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)  # (B, C, H, W)


def _torchvision(builder: Callable[..., nn.Module], num_classes: int, in_channels: int,
                 weights: str | None) -> TorchvisionSegmenter:  # fmt: skip
    if in_channels != 3:
        raise ConfigError(f"torchvision's segmentation models take RGB images (in_channels=3), got {in_channels}")
    classes, state = num_classes, None
    if weights:  # build with the file's classes, load, then give the last layer this model's
        state = pretrained.load(weights, builder.__name__)  # e.g. COCO_WITH_VOC_LABELS_V1
        last = next((v for k, v in state.items() if k.endswith("classifier.4.weight")), None)
        classes = num_classes if last is None else last.shape[0]
    model = TorchvisionSegmenter(builder(weights=None, weights_backbone=None, num_classes=classes, aux_loss=False))
    if state is not None:
        pretrained.fit(model, state, weights)  # the file's aux_classifier.* are skipped
        if classes != num_classes:
            old = model.classifier[4]
            model.classifier[4] = nn.Conv2d(old.in_channels, num_classes, 1)
    return model


@register_model
def fcn_resnet50(num_classes: int = 21, in_channels: int = 3, weights: str | None = None) -> TorchvisionSegmenter:
    """torchvision's FCN-ResNet50 (dilated ResNet-50, output stride 8, FCN head)."""
    from torchvision.models.segmentation import fcn_resnet50 as builder

    return _torchvision(builder, num_classes, in_channels, weights)


@register_model
def deeplabv3_resnet50(num_classes: int = 21, in_channels: int = 3, weights: str | None = None) -> TorchvisionSegmenter:
    """torchvision's DeepLabv3 on a dilated ResNet-50 (ASPP head)."""
    from torchvision.models.segmentation import deeplabv3_resnet50 as builder

    return _torchvision(builder, num_classes, in_channels, weights)


@register_model
def deeplabv3_resnet101(
    num_classes: int = 21, in_channels: int = 3, weights: str | None = None
) -> TorchvisionSegmenter:
    """torchvision's DeepLabv3 on a dilated ResNet-101 (ASPP head)."""
    from torchvision.models.segmentation import deeplabv3_resnet101 as builder

    return _torchvision(builder, num_classes, in_channels, weights)


@register_model
def deeplabv3_mobilenet_v3_large(
    num_classes: int = 21, in_channels: int = 3, weights: str | None = None
) -> TorchvisionSegmenter:
    """torchvision's DeepLabv3 on MobileNetV3-Large (Howard et al., 2019; output stride 16)."""
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large as builder

    return _torchvision(builder, num_classes, in_channels, weights)
