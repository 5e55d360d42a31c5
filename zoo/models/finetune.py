"""Fine-tuning a pretrained backbone (course lecture 37, d2l "Fine-Tuning"; Yosinski et al., 2014,
"How transferable are features in deep neural networks?").

A timm backbone, built by name, with ImageNet weights through ``zoo.models.weights``:
``pretrained=True`` (timm's own file, from the Hugging Face cache), a torchvision weights name
(``weights=IMAGENET1K_V1``: torchvision's file in torch hub's cache, for backbones whose keys are
torchvision's, as timm's ResNets') or a local file (``weights=``: a state_dict, a timm/``torch.save``
file, a ``.safetensors`` file or a zoo/Lightning checkpoint); its classifier is replaced by a new
``head`` for the new classes. The head is the submodule
``model.head``, so the task's ``head_lr_mult`` gives it its own learning rate (the course uses
10 times the backbone's). ``freeze_backbone=True`` trains the head alone.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.core.errors import ConfigError
from zoo.models.registry import register_model
from zoo.models.weights import TIMM_PREFIX, timm_model


class FineTuned(nn.Module):
    """``head(backbone(x))``: the backbone returns pooled ``(B, num_features)`` features."""

    #: tells ``ZooTask.build_model`` not to re-initialise the (pretrained) weights
    keeps_weights = True

    def __init__(self, backbone: nn.Module, num_features: int, num_classes: int, freeze_backbone: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(num_features, num_classes)
        nn.init.xavier_uniform_(self.head.weight)  # as the course initialises its new layer
        nn.init.zeros_(self.head.bias)
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> FineTuned:
        super().train(mode)
        if self.freeze_backbone:  # a frozen backbone keeps its batch-norm statistics too
            self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))  # (B, C, H, W) -> (B, num_features) -> (B, classes)


@register_model
def finetune(
    num_classes: int = 2,
    in_channels: int = 3,
    backbone: str = "resnet18",
    pretrained: bool = False,
    weights: str | None = None,
    freeze_backbone: bool = False,
) -> FineTuned:
    """A timm ``backbone`` (e.g. ``resnet18``, as the course fine-tunes) with a new ``head``.

    Args:
        backbone: timm model name (``timm/`` prefix optional).
        pretrained: timm's pretrained weights (from the Hugging Face cache; fetched when online).
        weights: a torchvision weights name or a local weights file instead; its classifier is dropped.
        freeze_backbone: train the new head only.
    """
    if pretrained and weights:
        raise ConfigError("give pretrained=True or weights=<file>, not both")
    name = backbone.removeprefix(TIMM_PREFIX)
    spec = TIMM_PREFIX + name if pretrained else weights
    net = timm_model(name, spec, torchvision_model=name, num_classes=0, in_chans=in_channels)
    return FineTuned(net, net.num_features, num_classes, freeze_backbone)
