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
    #: batches whose loss and accuracy are listed before they are folded into the epoch's sums
    fold_every = 1024

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
        # the epoch's recent batch losses (detached), correct predictions and batch sizes, and
        # the sums (loss * n, correct, n) of those already folded away
        self._train_losses: list[torch.Tensor] = []
        self._train_correct: list[torch.Tensor] = []
        self._train_sizes: list[int] = []
        self._train_sums = torch.zeros(3)

    def on_train_epoch_start(self) -> None:
        self._train_losses.clear()
        self._train_correct.clear()
        self._train_sizes.clear()
        self._train_sums = torch.zeros(3, device=self.device)

    def _fold_train_batches(self) -> torch.Tensor:
        """Adds the listed batches into the running sums (kept short so that long epochs do
        not pile up small tensors); returns the sums."""
        if self._train_sizes:
            sizes = torch.tensor(self._train_sizes, dtype=torch.float32, device=self._train_sums.device)
            loss_sum = torch.stack(self._train_losses).float() @ sizes
            correct = torch.stack(self._train_correct).sum().float()
            self._train_sums += torch.stack((loss_sum, correct, sizes.sum()))
            self._train_losses.clear()
            self._train_correct.clear()
            self._train_sizes.clear()
        return self._train_sums

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch[0], batch[1]
        logits = self.model(x)  # (B, num_classes)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        # Epoch loss and accuracy from per-batch values summed at the epoch's end, rather than a
        # torchmetrics metric and a self.log every step: on a model as small as LeNet those cost
        # a measurable share of each step (the foundation's target is Lightning within 5% of a
        # hand-written loop, scripts/recipe_bench.py).
        self._train_losses.append(loss.detach())
        self._train_correct.append((logits.argmax(-1) == y).sum())
        self._train_sizes.append(len(y))
        if len(self._train_sizes) == self.fold_every:
            self._fold_train_batches()
        self.log_step_metrics({"train/loss_step": loss.detach()})
        if self._trainer is not None and batch_idx + 1 == self._trainer.num_training_batches:
            self._log_train_epoch()
        return loss

    def _log_train_epoch(self) -> None:
        """The epoch's loss and accuracy, summed over every process (so DDP logs the global
        figures), logged from the epoch's last step so that they are in place before any
        epoch-end hook (checkpoints, the run report) reads them."""
        sums = self.trainer.strategy.reduce(self._fold_train_batches().clone(), reduce_op="sum")
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
