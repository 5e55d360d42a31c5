"""Nadaraya-Watson kernel regression: attention pooling (the course's lecture 64, book 10.2;
Nadaraya, 1964; Watson, 1964).

A query ``x`` attends to keys ``x_i`` with the Gaussian kernel's weights
``softmax(-((x - x_i) * w)^2 / 2)`` and returns the weighted mean of the values ``y_i``. The
non-parametric form fixes ``w = 1``; the parametric one learns the kernel's width ``w`` (the
course's ``NWKernelRegression``, one scalar drawn from U(0, 1)).

The regression task feeds a model one tensor per example, so an example is one row
``[query, key_1..key_n, value_1..value_n]`` of ``1 + 2n`` numbers: ``n`` may differ between
splits (the course trains each point against the other 49 and predicts from all 50).
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.core.errors import ConfigError
from zoo.models.registry import register_model


class NadarayaWatson(nn.Module):
    """Gaussian-kernel attention pooling; ``parametric`` learns the kernel's width."""

    def __init__(self, parametric: bool = True) -> None:
        super().__init__()
        self.parametric = parametric
        if parametric:
            self.w = nn.Parameter(torch.rand(1))
        else:
            self.register_buffer("w", torch.ones(1))
        self.attention_weights: torch.Tensor | None = None  # (B, n) of the last call, for plots

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] % 2 != 1 or x.shape[1] < 3:
            raise ConfigError(f"expected rows [query, n keys, n values] of 1 + 2n numbers, got shape {tuple(x.shape)}")
        n = (x.shape[1] - 1) // 2
        queries, keys, values = x[:, :1], x[:, 1 : 1 + n], x[:, 1 + n :]  # (B, 1), (B, n), (B, n)
        self.attention_weights = torch.softmax(-(((queries - keys) * self.w) ** 2) / 2, dim=1)  # (B, n)
        return (self.attention_weights * values).sum(1, keepdim=True)  # (B, 1)


@register_model
def nadaraya_watson(in_features: int | None = None, out_features: int = 1, parametric: bool = True) -> NadarayaWatson:
    """Attention pooling of lecture 64 (``parametric=False``: the fixed Gaussian kernel).
    ``in_features`` is not needed (each row carries its own keys); ``out_features`` must be 1."""
    if out_features != 1:
        raise ConfigError(f"nadaraya_watson predicts one value per query, got out_features={out_features}")
    return NadarayaWatson(parametric)
