"""Regression with mean squared error (the course's linear regression, house prices)."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torchmetrics import MeanSquaredError

from zoo.core.errors import ConfigError
from zoo.tasks.base import Init, ZooTask


class Regression(ZooTask):
    """Trains ``arch`` to predict ``y`` (shape ``(B, out_features)``) with MSE, or half of it.

    Logs ``train/loss``, ``val/loss``, ``val/rmse``, ``test/loss``, ``test/rmse``.

    Args:
        arch: model name in ``zoo.models``.
        in_features: linked from the data module (number of input columns).
        out_features: number of targets.
        arch_kwargs: further keyword arguments for the model's builder.
        init: ``default``, ``xavier`` or ``normal`` (std 0.01, as the course's linear regression).
        loss: ``mse``, ``half_mse`` (the course's squared loss ``(y_hat - y)^2 / 2``, whose
            numbers its optimisation chapter prints) or ``sse``: the batch's summed squared error,
            which the course's hand-written loops (lectures 19 and 64) minimise and print;
            ``*/rmse`` is the root of the MSE in every case.
        **kwargs: optimizer and schedule settings, see ``ZooTask``.
    """

    def __init__(
        self,
        arch: str = "linear",
        in_features: int = 2,
        out_features: int = 1,
        arch_kwargs: dict[str, Any] | None = None,
        init: Init = "default",
        loss: Literal["mse", "half_mse", "sse"] = "mse",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if loss not in ("mse", "half_mse", "sse"):
            raise ConfigError(f"loss must be mse, half_mse or sse, got {loss!r}")
        self.save_hyperparameters()
        self.loss_scale = 0.5 if loss == "half_mse" else 1.0
        self.reduction = "sum" if loss == "sse" else "mean"
        self.model = self.build_model(
            arch, init, in_features=in_features, out_features=out_features, **(arch_kwargs or {})
        )
        self.val_rmse = MeanSquaredError(squared=False)
        self.test_rmse = MeanSquaredError(squared=False)

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        x, y = batch[0], batch[1]
        pred = self.model(x).reshape(y.shape)
        loss = self.loss_scale * F.mse_loss(pred, y, reduction=self.reduction)
        if stage == "train":
            self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(y), prog_bar=True, sync_dist=True)
        else:
            self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
            # the root of the epoch's mean squared error, not a mean of per-batch roots
            rmse = self.val_rmse if stage == "val" else self.test_rmse
            rmse.update(pred.detach(), y)
            self.log(f"{stage}/rmse", rmse, on_epoch=True)
        return loss

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self.model(x)
