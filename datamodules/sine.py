"""The course's noisy sine series (lecture 51, book section 8.1, "sequence models").

``x_t = sin(0.01 t) + N(0, noise^2)`` for ``t = 1..T``. An autoregressive model with a window
of ``tau`` past values predicts ``x_t`` from ``(x_{t-tau}, ..., x_{t-1})``: the features are
those windows, the label is the next value. As in the course, the first ``num_train`` windows
train the model; the rest validate and test it (the series goes on where training stopped).
"""

from __future__ import annotations

import torch

from datamodules.base import TensorDataset, ZooDataModule
from zoo.core.errors import ConfigError


def noisy_sine(T: int = 1000, noise: float = 0.2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Times ``1..T`` and the noisy series, from a generator seeded with ``seed``."""
    time = torch.arange(1, T + 1, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    return time, torch.sin(0.01 * time) + noise * torch.randn(T, generator=g)


def lagged_windows(x: torch.Tensor, tau: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``(len(x) - tau, tau)``, row ``i`` = ``x[i:i+tau]``, and labels ``x[tau:]``."""
    if not 0 < tau < len(x):
        raise ConfigError(f"tau must be between 1 and the series length - 1 ({len(x) - 1}), got {tau}")
    return x.unfold(0, tau, 1)[:-1].clone(), x[tau:].unsqueeze(1)


class NoisySine(ZooDataModule):
    """Windows of ``tau`` past values of the noisy sine and the value that follows.

    Args:
        T: length of the series (course: 1000).
        tau: window of past values, the MLP's input size (course: 4; linked as ``in_features``).
        num_train: windows used for training (course: 600); the rest are split in half into
            validation and test, in time order.
        noise: standard deviation of the Gaussian noise (course: 0.2).
        batch_size: course: 16.
        seed: seed of the noise.
    """

    def __init__(
        self, T: int = 1000, tau: int = 4, num_train: int = 600, noise: float = 0.2,
        batch_size: int = 16, seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(batch_size)
        self.save_hyperparameters()  # zoo forecast rebuilds the series from the checkpoint
        if not 0 < num_train < T - tau - 1:
            raise ConfigError(f"num_train must leave windows for validation: 0 < {num_train} < {T - tau - 1}")
        self.T, self.tau, self.num_train, self.noise, self.seed = T, tau, num_train, noise, seed
        self.in_features = tau

    def series(self) -> tuple[torch.Tensor, torch.Tensor]:
        return noisy_sine(self.T, self.noise, self.seed)

    def setup(self, stage: str | None = None) -> None:
        features, labels = lagged_windows(self.series()[1], self.tau)
        n, half = self.num_train, (len(labels) - self.num_train) // 2
        self._train = TensorDataset(features[:n], labels[:n])
        self._val = TensorDataset(features[n : n + half], labels[n : n + half])
        self._test = TensorDataset(features[n + half :], labels[n + half :])
