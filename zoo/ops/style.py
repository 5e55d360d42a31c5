"""Neural style transfer's pieces (Gatys, Ecker and Bethge, 2016, "Image Style Transfer Using
Convolutional Neural Networks"), as the course builds them (lecture 49, d2l "Neural Style
Transfer"): the features of given layers (VGG-19's: ``zoo.models.vgg.vgg19_features``), the
content loss, the Gram-matrix style loss and the total-variation loss, with the course's layers
and weights (content 1, style 1e3, TV 10).
(The course's ``compute_loss`` sums ``10 * styles_l``, which repeats the list of style losses ten
times, so its style weight is in effect 1e4; here the weights are what they say.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: the course's layers of ``vgg19().features``: the 4th block's last conv for content, the
#: first conv of every block for style
CONTENT_LAYERS, STYLE_LAYERS = (25,), (0, 5, 10, 19, 28)
CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT = 1.0, 1e3, 10.0
RGB_MEAN, RGB_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def extract(net: nn.Sequential, x: torch.Tensor, content_layers: Sequence[int] = CONTENT_LAYERS,
            style_layers: Sequence[int] = STYLE_LAYERS) -> tuple[list[torch.Tensor], list[torch.Tensor]]:  # fmt: skip
    """The outputs of ``net``'s layers ``content_layers`` and ``style_layers`` for ``x`` (the
    course's ``extract_features``)."""
    contents, styles = [], []
    for i, layer in enumerate(net):
        x = layer(x)  # (B, C_i, H_i, W_i)
        if i in style_layers:
            styles.append(x)
        if i in content_layers:
            contents.append(x)
    return contents, styles


def gram(x: torch.Tensor) -> torch.Tensor:
    """``X X^T / (c h w)`` of a ``(1, c, h, w)`` feature map: ``(c, c)`` channel correlations."""
    c, n = x.shape[1], x.numel() // x.shape[1]
    x = x.reshape(c, n)
    return x @ x.T / (c * n)


def content_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(y_hat, y.detach())


def style_loss(y_hat: torch.Tensor, gram_y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(gram(y_hat), gram_y.detach())


def tv_loss(y_hat: torch.Tensor) -> torch.Tensor:
    """Total variation: half the mean absolute difference between vertical and between
    horizontal neighbours (smooths the synthesised image's high-frequency noise)."""
    return 0.5 * ((y_hat[:, :, 1:, :] - y_hat[:, :, :-1, :]).abs().mean()
                  + (y_hat[:, :, :, 1:] - y_hat[:, :, :, :-1]).abs().mean())  # fmt: skip


def total_loss(x: torch.Tensor, contents_hat: list[torch.Tensor], styles_hat: list[torch.Tensor],
               contents: list[torch.Tensor], grams: list[torch.Tensor],
               weights: tuple[float, float, float] = (CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT),
               ) -> dict[str, torch.Tensor]:  # fmt: skip
    """The course's ``compute_loss``: weighted content, style and TV losses and their sum."""
    wc, ws, wt = weights
    parts = {
        "content": wc * sum(content_loss(a, b) for a, b in zip(contents_hat, contents, strict=True)),
        "style": ws * sum(style_loss(a, g) for a, g in zip(styles_hat, grams, strict=True)),
        "tv": wt * tv_loss(x),
    }
    parts["total"] = parts["content"] + parts["style"] + parts["tv"]
    return parts
