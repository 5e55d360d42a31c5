"""LeNet-5 (LeCun et al., 1998, "Gradient-based learning applied to document recognition").

The course's version (lecture 23): sigmoid activations and average pooling on 28x28 inputs, the
first convolution padded by 2. Its batch-norm variant (lecture 28) adds BatchNorm after every
convolution and hidden linear layer. Arguments give the modern variant (ReLU, max pooling,
wider channels) used by the fast Fashion-MNIST recipe, rather than another copy of the net.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from zoo.core.errors import ConfigError
from zoo.models.registry import register_model

_ACT = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}
_POOL = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet(nn.Module):
    """Two ``conv(5x5) -> [BN] -> act -> pool(2)`` stages, then ``hidden`` linear layers.

    Works on any input of at least 12x12 pixels (a lazy first linear layer sizes itself is
    avoided: the feature size is computed from ``image_size``).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
        channels: Sequence[int] = (6, 16),
        hidden: Sequence[int] = (120, 84),
        activation: str = "sigmoid",
        pool: str = "avg",
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in _ACT or pool not in _POOL:
            raise ConfigError(f"activation in {sorted(_ACT)} and pool in {sorted(_POOL)} expected")
        c1, c2 = channels
        act, Pool = _ACT[activation], _POOL[pool]

        def norm2d(c: int) -> list[nn.Module]:
            return [nn.BatchNorm2d(c)] if batch_norm else []

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=5, padding=2), *norm2d(c1), act(), Pool(2, 2),
            nn.Conv2d(c1, c2, kernel_size=5), *norm2d(c2), act(), Pool(2, 2),
            nn.Flatten(),
        )
        side = ((image_size // 2) - 4) // 2  # conv(pad 2) keeps the size; conv(5) removes 4
        if side < 1:
            raise ConfigError(f"LeNet needs inputs of at least 12x12 pixels, got image_size={image_size}")
        width = c2 * side * side
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), *([nn.BatchNorm1d(size)] if batch_norm else []), act()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x):
        return self.classifier(self.features(x))  # (B, C, H, W) -> (B, c2*s*s) -> (B, classes)


@register_model
def lenet(num_classes: int = 10, in_channels: int = 1, **kwargs) -> LeNet:
    """The course's LeNet: sigmoid, average pooling, channels 6/16, hidden 120/84."""
    return LeNet(num_classes, in_channels, **kwargs)


@register_model
def lenet_bn(num_classes: int = 10, in_channels: int = 1, **kwargs) -> LeNet:
    """LeNet with batch normalisation after each convolution and hidden layer (lecture 28)."""
    return LeNet(num_classes, in_channels, batch_norm=True, **kwargs)
