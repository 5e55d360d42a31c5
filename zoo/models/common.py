"""Layers and checks shared by more than one family (AlexNet and VGG share a classifier)."""

from __future__ import annotations

import torch
from torch import nn


def flat_features(features: nn.Module, in_channels: int, image_size: int, model: str) -> int:
    """Width of ``features``' flattened output for one ``image_size`` input (so the first
    linear layer is sized for the input the model will get, without a lazy layer)."""
    try:
        with torch.no_grad():
            return features(torch.zeros(1, in_channels, image_size, image_size)).shape[1]
    except RuntimeError as e:
        raise ValueError(f"{model}: image_size={image_size} is too small for this architecture ({e})") from e


def dense_head(width: int, hidden: int, dropout: float, num_classes: int) -> nn.Sequential:
    """AlexNet's classifier, which VGG reuses: two dropout-regularised hidden layers."""
    return nn.Sequential(
        nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )  # fmt: skip


def check_size(x: torch.Tensor, image_size: int, model: str) -> None:
    """A clear error instead of a matrix-shape mismatch deep in the classifier."""
    if x.shape[-1] != image_size or x.shape[-2] != image_size:
        raise ValueError(
            f"{model} was built for {image_size}x{image_size} inputs but got {tuple(x.shape[-2:])}; "
            f"pass arch_kwargs={{image_size: {x.shape[-1]}}} or resize the data"
        )
