"""The course's synthetic linear-regression data (lecture 08): y = Xw + b + noise."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from datamodules.base import TensorDataset, ZooDataModule
from zoo.core.errors import ConfigError


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
                raise ConfigError(f"num_inputs={num_inputs} repeats one weight, but w has {len(w)} values")
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



def run_generator(seed: int | None) -> torch.Generator:
    """A generator seeded with ``seed``, or with the run's seed (``seed_everything``'s) when None."""
    return torch.Generator().manual_seed(torch.initial_seed() if seed is None else seed)


class SyntheticPolynomial(ZooDataModule):
    """The course's polynomial fit (lecture 11, book 4.4): ``x ~ N(0, 1)``, features
    ``x^i / i!`` for ``i < max_degree`` (20), targets ``5 + 1.2 x - 3.4 x^2/2! + 5.6 x^3/3!``
    plus ``N(0, noise^2)`` noise (0.1), ``num_train`` training and ``num_val`` test rows (100 each).

    ``num_features`` columns are kept: 4 fits the cubic exactly (normal), 2 underfits it (a line),
    20 overfits it (the course trains that one for 1,500 epochs). Validation and test are the same
    held-out rows (the course's test loss). ``seed`` None draws from the run's seed
    (``seed_everything``), so that runs of other seeds see other draws, as the course's do.
    """

    def __init__(
        self,
        num_features: int = 4,
        max_degree: int = 20,
        true_w: Sequence[float] = (5.0, 1.2, -3.4, 5.6),
        noise: float = 0.1,
        num_train: int = 100,
        num_val: int = 100,
        batch_size: int = 10,
        seed: int | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if not 1 <= num_features <= max_degree or len(true_w) > max_degree:
            raise ConfigError(f"num_features must be in 1..max_degree={max_degree} and true_w at most that long, "
                             f"got num_features={num_features}, {len(true_w)} weights")  # fmt: skip
        self.num_features, self.max_degree, self.noise, self.seed = num_features, max_degree, noise, seed
        self.true_w = torch.zeros(max_degree)
        self.true_w[: len(true_w)] = torch.tensor(list(true_w))
        self.num_train, self.num_val = num_train, num_val
        self.in_features = num_features

    def setup(self, stage: str | None = None) -> None:
        g = run_generator(self.seed)
        x = torch.randn(self.num_train + self.num_val, 1, generator=g, dtype=torch.float64)
        powers = torch.arange(self.max_degree, dtype=torch.float64)
        features = x**powers / torch.exp(torch.lgamma(powers + 1))  # x^i / i!
        y = features @ self.true_w.double() + self.noise * torch.randn(len(x), generator=g, dtype=torch.float64)
        X, y = features[:, : self.num_features].float(), y.float().unsqueeze(1)
        n = self.num_train
        self._train = TensorDataset(X[:n], y[:n])
        self._val = self._test = TensorDataset(X[n:], y[n:])


class EdgeImage(ZooDataModule):
    """The course's edge-detection example (lecture 19, book 6.2): a ``height x width`` (6 x 8)
    image of ones whose columns 2-5 are zero, and its cross-correlation with ``K = [1, -1]``
    (1 where the image steps from 1 to 0, -1 where it steps back). One example, so one step
    per epoch: the course's 10 steps are 10 epochs. Validation and test score the same pair.
    """

    def __init__(self, height: int = 6, width: int = 8, batch_size: int = 1, num_workers: int = 0) -> None:
        super().__init__(batch_size, num_workers)
        if width < 7:
            raise ConfigError(f"width must be at least 7 for the band of zeros in columns 2-5, got {width}")
        self.height, self.width = height, width

    def setup(self, stage: str | None = None) -> None:
        X = torch.ones(self.height, self.width)
        X[:, 2:6] = 0
        Y = X[:, :-1] - X[:, 1:]  # the cross-correlation with K = [1, -1]
        self._train = self._val = self._test = TensorDataset(X[None, None], Y[None, None])  # (1, 1, H, W)


class NadarayaWatsonData(ZooDataModule):
    """The course's attention-pooling data (lecture 64, book 10.2): ``num_train`` (50) sorted
    inputs ``x ~ U(0, 5)`` with targets ``2 sin(x) + x^0.8 + N(0, 0.5^2)``.

    Rows are ``[query, keys, values]`` for ``zoo.models.nadaraya_watson``: in training each
    point queries the other 49 (the course's leave-one-out keys); validation and test query
    ``x = 0, 0.1, ..., 4.9`` against all 50 training points, scored against the noise-free curve.
    One batch holds every row (the course's full-batch SGD). ``seed`` None: the run's seed.
    """

    def __init__(self, num_train: int = 50, noise: float = 0.5, seed: int | None = None, num_workers: int = 0) -> None:
        super().__init__(num_train, num_workers)
        self.num_train, self.noise, self.seed = num_train, noise, seed

    @staticmethod
    def truth(x: torch.Tensor) -> torch.Tensor:
        return 2 * torch.sin(x) + x**0.8

    def setup(self, stage: str | None = None) -> None:
        g = run_generator(self.seed)
        n = self.num_train
        x = torch.sort(torch.rand(n, generator=g) * 5).values
        y = self.truth(x) + self.noise * torch.randn(n, generator=g)
        others = ~torch.eye(n, dtype=torch.bool)
        keys, values = x.repeat(n, 1)[others].reshape(n, n - 1), y.repeat(n, 1)[others].reshape(n, n - 1)
        self._train = TensorDataset(torch.cat([x[:, None], keys, values], 1), y[:, None])
        x_test = torch.arange(0, 5, 0.1)
        m = len(x_test)
        rows = torch.cat([x_test[:, None], x.repeat(m, 1), y.repeat(m, 1)], 1)
        self._val = self._test = TensorDataset(rows, self.truth(x_test)[:, None])
        self.batch_size = max(n, m)
