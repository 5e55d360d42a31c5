"""torchvision's detectors by name: Faster R-CNN (Ren et al., 2015, "Faster R-CNN: Towards
Real-Time Object Detection with Region Proposal Networks") on a MobileNetV3-Large FPN (Howard
et al., 2019), RetinaNet (Lin et al., 2017, "Focal Loss for Dense Object Detection") on a
ResNet-50 FPN, and SSDlite (Sandler et al., 2018, after SSD: Liu et al., 2016) on MobileNetV3.

They keep torchvision's call convention, not the zoo's image-batch one: ``model(images,
targets)`` with a list of ``(3, H, W)`` images of any sizes (the model resizes and normalises
them itself) and, in training, a list of ``{"boxes": (G, 4) xyxy pixels, "labels": (G,)}``
returns a dict of losses; in eval mode ``model(images)`` returns a list of ``{"boxes",
"scores", "labels"}``. ``num_classes`` counts object classes, as for ``tiny_ssd``; torchvision
keeps label 0 for the background, so object class ``k`` is label ``k + 1`` here.

torchvision's builders get ``weights=None, weights_backbone=None``; trained weights come through
``zoo.models.weights``: torchvision's COCO weights by name (``weights=COCO_V1``, from torch hub's
cache, e.g. ``fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth``), a detector's ``state_dict`` as
torchvision's own download of it or ``torch.save(model.state_dict(), path)`` writes, or a
``zoo.fit`` checkpoint, read only through the zoo's safe loader. The class-count-dependent layers of
the heads keep their fresh values when ``num_classes`` differs from the file's (fine-tuning).
With weights, the FPN models' backbone batch norms are frozen, as torchvision builds them for
its own pretrained weights; unlike torchvision, every backbone layer stays trainable.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from torch import nn

from zoo.models import weights as pretrained
from zoo.models.registry import register_model


def _freeze_batch_norm(module: nn.Module) -> None:
    """Replace every ``BatchNorm2d`` under ``module`` by torchvision's ``FrozenBatchNorm2d``
    (its default eps, as in torchvision's pretrained builds): 2-image detection batches would
    otherwise overwrite the pretrained statistics."""
    from torchvision.ops import FrozenBatchNorm2d

    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child.num_features))
        else:
            _freeze_batch_norm(child)


def load_detector_weights(model: nn.Module, spec: str | Path, torchvision_model: str | None = None) -> list[str]:
    """Load the detector weights ``spec`` names (a file, or torchvision's ``COCO_V1`` of
    ``torchvision_model`` from torch hub's cache) into ``model``; returns the names of the tensors
    left at their initial values because their number of classes differs from the file's. Any
    other missing or misshapen tensor raises ``CheckpointError``: the file is another
    architecture's."""
    # the heads' output channels scale with the classes: only the first dimension may differ
    _, kept = pretrained.load_into(model, spec, torchvision_model, adapt_stem=False,
                                   fresh=lambda key, theirs, own: theirs[1:] == own[1:])  # fmt: skip
    return kept


def _build(builder: Callable[..., nn.Module], num_classes: int, spec: str | None, frozen_bn: bool,
           **kwargs) -> nn.Module:  # fmt: skip
    model = builder(weights=None, weights_backbone=None, num_classes=num_classes + 1, **kwargs)
    if spec is not None:
        if frozen_bn:
            _freeze_batch_norm(model.backbone)
        kept = load_detector_weights(model, spec, builder.__name__)
        if kept:
            warnings.warn(
                f"{spec}: {len(kept)} head tensors keep their initial values, the file has another "
                f"number of classes than num_classes={num_classes} (e.g. {kept[0]})",
                stacklevel=3,
            )
    # torchvision's own initialisation (RetinaNet's prior-probability bias) or the loaded weights
    # must survive ZooTask.build_model, which re-initialises other models' layers on request
    model.keeps_weights = True
    return model


@register_model
def fasterrcnn_mobilenet_v3_large_fpn(
    num_classes: int = 90, weights: str | None = None, min_size: int = 800, max_size: int = 1333, **kwargs
) -> nn.Module:
    """Faster R-CNN, MobileNetV3-Large FPN backbone. ``min_size``/``max_size``: the bounds the
    model resizes images to (torchvision's ``..._320_fpn`` variant is 320/640 with
    ``rpn_pre_nms_top_n_test=150, rpn_post_nms_top_n_test=150``). ``num_classes`` defaults to
    COCO's 90 category ids, so torchvision's COCO weights load whole; ``kwargs`` go to
    torchvision's ``FasterRCNN``."""
    from torchvision.models import detection

    return _build(detection.fasterrcnn_mobilenet_v3_large_fpn, num_classes, weights, True,
                  min_size=min_size, max_size=max_size, **kwargs)  # fmt: skip


@register_model
def retinanet_resnet50_fpn(
    num_classes: int = 90, weights: str | None = None, min_size: int = 800, max_size: int = 1333, **kwargs
) -> nn.Module:
    """RetinaNet, ResNet-50 FPN backbone (sigmoid focal loss: label 0 simply never fires).
    Arguments as for ``fasterrcnn_mobilenet_v3_large_fpn``; ``kwargs`` go to ``RetinaNet``."""
    from torchvision.models import detection

    return _build(detection.retinanet_resnet50_fpn, num_classes, weights, True,
                  min_size=min_size, max_size=max_size, **kwargs)  # fmt: skip


@register_model
def ssdlite320_mobilenet_v3_large(num_classes: int = 90, weights: str | None = None, **kwargs) -> nn.Module:
    """SSDlite on MobileNetV3-Large; images are resized to 320x320 (fixed by torchvision's
    builder). Its batch norms train also with weights, as torchvision's own recipe does;
    ``kwargs`` go to torchvision's ``SSD``."""
    from torchvision.models import detection

    return _build(detection.ssdlite320_mobilenet_v3_large, num_classes, weights, False, **kwargs)
