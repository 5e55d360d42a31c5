"""The convolution layer of lecture 19 (book 6.2): a bias-free 2-D convolution that learns a
kernel from an image ``X`` and its target ``Y``, as the course learns the edge detector
``K = [1, -1]`` (kernel 1 x 2) from a 6 x 8 image of ones with a band of zeros.

``corr2d`` is the course's cross-correlation written out as loops, kept as the tested reference;
the model trains ``nn.Conv2d``, which computes the same cross-correlation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from zoo.core.errors import ConfigError
from zoo.models.registry import register_model


def corr2d(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """The 2-D cross-correlation of ``X`` (H, W) with the kernel ``K`` (h, w): (H - h + 1, W - w + 1)."""
    h, w = K.shape
    Y = torch.zeros(X.shape[0] - h + 1, X.shape[1] - w + 1, dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


@register_model
def edge_conv(in_features: int | None = None, out_features: int = 1,
              kernel_size: Sequence[int] = (1, 2)) -> nn.Conv2d:  # fmt: skip
    """One channel in, one out, no bias (lecture 19): ``(B, 1, H, W) -> (B, 1, H - kh + 1, W - kw + 1)``.
    ``in_features`` and ``out_features`` are what the regression task passes; the image's size is free."""
    if out_features != 1:
        raise ConfigError(f"edge_conv has one output channel, got out_features={out_features}")
    return nn.Conv2d(1, 1, kernel_size=tuple(kernel_size), bias=False)
