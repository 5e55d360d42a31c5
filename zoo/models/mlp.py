"""Linear networks and multilayer perceptrons (the course's chapters 3-4, lectures 08-13).

Linear regression, softmax regression and the MLP with dropout are one family: an MLP with no
hidden layer is softmax regression on flattened pixels, and a linear regression on columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

from torch import nn

from zoo.core.errors import ConfigError
from zoo.models.registry import register_model

_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLP(nn.Module):
    """Flatten, then ``Linear -> activation -> Dropout`` per hidden layer, then a linear output.

    Args:
        in_features: input size after flattening.
        out_features: number of outputs (classes or regression targets).
        hidden: sizes of the hidden layers (empty: a linear model).
        activation: ``relu``, ``sigmoid``, ``tanh`` or ``gelu``.
        dropout: one probability for every hidden layer, or one per layer (course: 0.2, 0.5).
        bias: whether the output layer has a bias (the course's polynomial fit, lecture 11, has none).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        dropout: float | Sequence[float] = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        drops = [dropout] * len(hidden) if isinstance(dropout, (int, float)) else list(dropout)
        if len(drops) != len(hidden):
            raise ConfigError(f"dropout has {len(drops)} values for {len(hidden)} hidden layers")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size, p in zip(hidden, drops):
            layers += [nn.Linear(width, size), _ACTIVATIONS[activation]()]
            if p > 0:
                layers.append(nn.Dropout(p))
            width = size
        layers.append(nn.Linear(width, out_features, bias=bias))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)  # (B, ...) -> (B, out_features)


@register_model
def linear(in_features: int = 2, out_features: int = 1, bias: bool = True) -> MLP:
    """Linear regression (lecture 08): one ``Linear`` layer (``bias=False``: lecture 11's polynomial fit)."""
    return MLP(in_features, out_features, bias=bias)


def _image_features(in_channels: int, image_size: int | Sequence[int]) -> int:
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    return in_channels * prod(size)


@register_model
def softmax_regression(num_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> MLP:
    """Softmax regression (lecture 09): flattened pixels -> logits; the softmax lives in the loss."""
    return MLP(_image_features(in_channels, image_size), num_classes)


@register_model
def mlp(
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 28,
    hidden: Sequence[int] = (256,),
    activation: str = "relu",
    dropout: float | Sequence[float] = 0.0,
) -> MLP:
    """The course's MLP (lecture 10: one hidden layer of 256; lecture 13: two, with dropout)."""
    return MLP(_image_features(in_channels, image_size), num_classes, hidden, activation, dropout)


@register_model
def mlp_regressor(
    in_features: int = 2,
    out_features: int = 1,
    hidden: Sequence[int] = (256,),
    activation: str = "relu",
    dropout: float | Sequence[float] = 0.0,
) -> MLP:
    """An MLP on tabular columns (house prices, the sequence model's lagged features)."""
    return MLP(in_features, out_features, hidden, activation, dropout)
