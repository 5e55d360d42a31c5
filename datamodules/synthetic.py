"""The course's synthetic linear-regression data (lecture 08): y = Xw + b + noise."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from datamodules.base import TensorDataset, ZooDataModule


class SyntheticRegression(ZooDataModule):
    """Features ``X ~ N(0, 1)`` and targets ``y = X w + b + N(0, noise^2)``, drawn from a
    generator seeded with ``seed`` (the course: w = [2, -3.4], b = 4.2, noise 0.01, 1,000 rows).

    Validation and test are further fresh draws of ``num_val`` rows each. With ``num_inputs``
    the single value in ``w`` repeats that many times (the course's weight-decay experiment,
    lecture 12: 200 inputs, w = 0.01, b = 0.05, 20 training rows).
    """

    def __init__(
        self,
        w: Sequence[float] = (2.0, -3.4),
        b: float = 4.2,
        num_inputs: int | None = None,
        noise: float = 0.01,
        num_train: int = 1000,
        num_val: int = 1000,
        batch_size: int = 10,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if num_inputs is not None:
            if len(w) != 1:
                raise ValueError(f"num_inputs={num_inputs} repeats one weight, but w has {len(w)} values")
            w = list(w) * num_inputs
        self.w = torch.tensor(list(w), dtype=torch.float32)
        self.b, self.noise, self.seed = b, noise, seed
        self.num_train, self.num_val = num_train, num_val
        self.in_features = len(self.w)

    def _draw(self, n: int, g: torch.Generator) -> TensorDataset:
        X = torch.randn(n, len(self.w), generator=g)
        y = X @ self.w + self.b + self.noise * torch.randn(n, generator=g)
        return TensorDataset(X, y.unsqueeze(1))

    def setup(self, stage: str | None = None) -> None:
        g = torch.Generator().manual_seed(self.seed)
        self._train = self._draw(self.num_train, g)
        self._val = self._draw(self.num_val, g)
        self._test = self._draw(self.num_val, g)

