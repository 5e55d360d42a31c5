"""Image (or any) classification: cross-entropy; validation and test accuracy via torchmetrics."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from zoo.tasks.base import Init, ZooTask


class Classification(ZooTask):
    """Trains ``arch`` (a registry name, or ``timm/<name>``) on ``(x, y)`` batches.

    Logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``test/loss``, ``test/acc``.
    Every checkpoint also records the data module's class names (``classes``) and evaluation
    preprocessing (``preprocessing``, see ``datamodules.augment.eval_preprocessing``; the task's
    ``data_state``) when it has them, so ``zoo predict`` and ``zoo export`` need only the checkpoint.

    Args:
        arch: model name in ``zoo.models``.
        num_classes: linked from the data module.
        in_channels: linked from the data module.
        arch_kwargs: further keyword arguments for the model's builder.
        init: ``default`` (PyTorch's), ``xavier`` or ``normal`` (std 0.01), as in the course.
        label_smoothing: cross-entropy label smoothing.
        **kwargs: optimizer and schedule settings, see ``ZooTask``.
    """

    monitor = ("val/acc", "max")
    data_state = {"classes": None, "preprocessing": None}

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
        self.classes: list[str] | None = None  # from the data module, or from a checkpoint
        self.preprocessing: dict | None = None

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        x, y = batch[0], batch[1]
        logits = self.model(x)  # (B, num_classes)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        if stage == "train":
            acc = (logits.argmax(-1) == y).float().mean()
            self.log_dict({"train/loss": loss, "train/acc": acc}, on_step=False, on_epoch=True, batch_size=len(y),
                          prog_bar=True, sync_dist=True)  # fmt: skip
        else:
            acc = self.val_acc if stage == "val" else self.test_acc
            acc.update(logits, y)
            self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
            self.log(f"{stage}/acc", acc, on_epoch=True, prog_bar=True)
        return loss

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self.model(x).softmax(-1)
