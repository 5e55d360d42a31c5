"""Image (or any) classification: cross-entropy, accuracy via torchmetrics."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from zoo.tasks.base import Init, ZooTask


class Classification(ZooTask):
    """Trains ``arch`` (a registry name, or ``timm/<name>``) on ``(x, y)`` batches.

    Logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``test/loss``, ``test/acc``.

    Args:
        arch: model name in ``zoo.registry``.
        num_classes: linked from the data module.
        in_channels: linked from the data module.
        arch_kwargs: further keyword arguments for the model's builder.
        init: ``default`` (PyTorch's), ``xavier`` or ``normal`` (std 0.01), as in the course.
        label_smoothing: cross-entropy label smoothing.
        **kwargs: optimizer and schedule settings, see ``ZooTask``.
    """

    monitor = ("val/acc", "max")

    def __init__(
        self,
        arch: str = "lenet",
        num_classes: int = 10,
        in_channels: int = 1,
        arch_kwargs: dict[str, Any] | None = None,
        init: Init = "default",
        label_smoothing: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.model = self.build_model(
            arch, init, num_classes=num_classes, in_channels=in_channels, **(arch_kwargs or {})
        )
        # labels come from our own data modules: skip torchmetrics' per-step input checks
        self.val_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.test_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self._train_sums = torch.zeros(2)  # loss * n, correct
        self._train_count = 0

    def on_train_epoch_start(self) -> None:
        self._train_sums = torch.zeros(2, device=self.device)
        self._train_count = 0

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch[0], batch[1]
        logits = self.model(x)  # (B, num_classes)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        # Epoch loss and accuracy from two running sums rather than a torchmetrics metric and a
        # self.log every step: on a model as small as LeNet those cost a measurable share of each
        # step (the foundation's target is Lightning within 5% of a hand-written loop).
        with torch.no_grad():
            self._train_sums += torch.stack((loss * len(y), (logits.argmax(-1) == y).sum()))
        self._train_count += len(y)
        trainer = self._trainer  # None when the step is called outside a Trainer
        if trainer is not None:
            if (self.global_step + 1) % trainer.log_every_n_steps == 0:  # the steps the logger writes
                self.log("train/loss_step", loss.detach(), prog_bar=True)
            if batch_idx + 1 == trainer.num_training_batches:
                self._log_train_epoch()
        return loss

    def _log_train_epoch(self) -> None:
        """The epoch's loss and accuracy, summed over every process (so DDP logs the global
        figures), logged from the epoch's last step so that they are in place before any
        epoch-end hook (checkpoints, the run report) reads them."""
        count = torch.tensor(float(self._train_count), device=self.device)
        sums = self.trainer.strategy.reduce(torch.cat((self._train_sums, count[None])), reduce_op="sum")
        self.log("train/loss", sums[0] / sums[2], on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", sums[1] / sums[2], on_step=False, on_epoch=True, prog_bar=True)

    def _eval_step(self, batch: Any, stage: str, acc: MulticlassAccuracy) -> None:
        x, y = batch[0], batch[1]
        logits = self.model(x)  # (B, num_classes)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        acc.update(logits, y)
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log(f"{stage}/acc", acc, on_epoch=True, prog_bar=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_acc)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_acc)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self.model(x).softmax(-1)
