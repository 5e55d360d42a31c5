"""The course's TinySSD (d2l section 13.7, lecture 45), a small single-shot multibox detector
(Liu et al., 2016, "SSD: Single Shot MultiBox Detector").

A base network of three down-sampling blocks (16, 32, 64 channels), two more blocks of 128
channels and a global max pool give five feature maps, 32, 16, 8, 4 and 1 cells a side for
the course's 256x256 images. Each scale has its own anchor sizes (from 0.2 to 0.961 of the
image) and the ratios 1, 2 and 0.5, so ``2 + 3 - 1 = 4`` anchors a cell (5444 in all at 256),
and its own 3x3 convolutions that predict every anchor's class scores and box offsets.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from zoo.core.errors import ConfigError
from zoo.models.registry import register_model

#: the course's anchor sizes, two a scale: the first steps by 0.17 from 0.2, the second is the
#: geometric mean of the first and the next step (0.961 = sqrt(0.88 * 1.05))
SIZES = ((0.2, 0.272), (0.37, 0.447), (0.54, 0.619), (0.71, 0.79), (0.88, 0.961))
RATIOS = (1.0, 2.0, 0.5)


def down_sample_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two ``conv(3x3, pad 1) -> BN -> ReLU``, then a 2x2 max pool: half the height and width."""
    layers: list[nn.Module] = []
    for c in (in_channels, out_channels):
        layers += [nn.Conv2d(c, out_channels, kernel_size=3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class TinySSD(nn.Module):
    """``forward(images)`` -> ``(anchors, class_logits, offsets)``.

    ``anchors (A, 4)`` are shared by the batch, as fractions of the image; ``class_logits
    (B, A, num_classes + 1)`` with the background at index 0; ``offsets (B, A, 4)`` in the
    encoding of ``zoo.ops.boxes.encode_offsets``. Inputs need at least 64x64 pixels (the fourth
    scale's block halves a 1x1 map otherwise).
    """

    #: tells the detection task (and the tests) that forward returns (anchors, logits, offsets)
    returns_anchors = True

    def __init__(
        self,
        num_classes: int = 1,
        in_channels: int = 3,
        sizes: Sequence[Sequence[float]] = SIZES,
        ratios: Sequence[float] = RATIOS,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.sizes = [tuple(s) for s in sizes]
        self.ratios = tuple(ratios)
        if len(self.sizes) != 5:
            raise ConfigError(f"TinySSD has five scales, got {len(self.sizes)} anchor size lists")
        widths = {len(s) for s in self.sizes}
        if len(widths) != 1:
            raise ConfigError(f"every scale needs as many anchor sizes (one head shape), got {self.sizes}")
        per_cell = widths.pop() + len(self.ratios) - 1
        base = nn.Sequential(*(down_sample_block(a, b) for a, b in zip((in_channels, 16, 32), (16, 32, 64))))
        self.blocks = nn.ModuleList([
            base, down_sample_block(64, 128), down_sample_block(128, 128), down_sample_block(128, 128),
            nn.AdaptiveMaxPool2d((1, 1)),
        ])  # fmt: skip
        channels = (64, 128, 128, 128, 128)
        self.class_heads = nn.ModuleList(
            nn.Conv2d(c, per_cell * (num_classes + 1), kernel_size=3, padding=1) for c in channels
        )
        self.box_heads = nn.ModuleList(nn.Conv2d(c, per_cell * 4, kernel_size=3, padding=1) for c in channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        from zoo.ops.boxes import anchor_boxes  # here: torchvision loads only when a detector runs

        batch = x.shape[0]
        anchors, logits, offsets = [], [], []
        for block, class_head, box_head, sizes in zip(self.blocks, self.class_heads, self.box_heads, self.sizes):
            x = block(x)  # (B, C_i, H_i, W_i)
            anchors.append(anchor_boxes(x.shape[-2:], sizes, self.ratios, device=x.device))  # (H_i*W_i*k, 4)
            # channels-last, so that each cell's k anchors follow one another as in anchor_boxes
            logits.append(class_head(x).permute(0, 2, 3, 1).reshape(batch, -1, self.num_classes + 1))
            offsets.append(box_head(x).permute(0, 2, 3, 1).reshape(batch, -1, 4))  # (B, H_i*W_i*k, 4)
        return torch.cat(anchors), torch.cat(logits, dim=1), torch.cat(offsets, dim=1)  # (A, 4), (B, A, C+1), (B, A, 4)


@register_model
def tiny_ssd(num_classes: int = 1, in_channels: int = 3, **kwargs) -> TinySSD:
    """The course's TinySSD (one class, the bananas, by default)."""
    return TinySSD(num_classes, in_channels, **kwargs)
