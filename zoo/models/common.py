"""Layers, checks and initialisations shared by more than one family (AlexNet and VGG share a
classifier; every task may re-initialise its model as the course does)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from zoo.core.errors import ConfigError

Init = Literal["default", "xavier", "normal"]


def flat_features(features: nn.Module, in_channels: int, image_size: int, model: str) -> int:
    """Width of ``features``' flattened output for one ``image_size`` input (so the first
    linear layer is sized for the input the model will get, without a lazy layer)."""
    try:
        with torch.no_grad():
            return features(torch.zeros(1, in_channels, image_size, image_size)).shape[1]
    except RuntimeError as e:
        raise ConfigError(f"{model}: image_size={image_size} is too small for this architecture ({e})") from e


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
        raise ConfigError(
            f"{model} was built for {image_size}x{image_size} inputs but got {tuple(x.shape[-2:])}; "
            f"pass arch_kwargs={{image_size: {x.shape[-1]}}} or resize the data"
        )


def init_weights(model: nn.Module, scheme: Init) -> None:
    """The course's initialisations for Linear and Conv layers: Xavier-uniform or N(0, 0.01)."""
    if scheme == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
