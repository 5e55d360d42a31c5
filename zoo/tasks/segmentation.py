"""Semantic segmentation: per-pixel cross-entropy, pixel accuracy and mIoU (the course's
lectures 46-48, d2l "Fully Convolutional Networks").

The loss is the cross-entropy averaged over the labelled pixels of a batch; pixels labelled
``ignore_index`` (255: VOC's object boundaries, the padding of whole-image batches) count in
neither loss nor metrics. (The course averages per image over every pixel, boundaries scored
as background.) Validation and test accumulate one confusion matrix over the whole split
(torchmetrics' ``MulticlassConfusionMatrix``, summed over every process when it is computed)
and derive from it the pixel accuracy (correct / labelled pixels) and the mean IoU over the
classes present in the split's labels or predictions (``diag / (row + column - diag)``, as
VOC's devkit and torchmetrics' ``MulticlassJaccardIndex`` score it): never a mean of per-batch
figures, which would weight a small last batch like a full one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassConfusionMatrix

from zoo.tasks.base import ZooTask
from zoo.tasks.media import MEDIA_SAMPLES, log_images, wandb_logger

IGNORE_INDEX = 255


def scores(confmat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pixel accuracy and mean IoU of a ``(C, C)`` confusion matrix (rows: labels, columns:
    predictions); classes with no pixel in either are left out of the mean."""
    confmat = confmat.double()
    diag = confmat.diagonal()
    union = confmat.sum(0) + confmat.sum(1) - diag
    present = union > 0
    iou = diag[present] / union[present]
    miou = iou.mean() if iou.numel() else confmat.new_zeros(())
    return {"acc": diag.sum() / confmat.sum().clamp(min=1), "miou": miou}


class Segmentation(ZooTask):
    """Trains ``arch`` (a model returning ``(B, num_classes, H, W)`` logits at the input's size)
    on ``(images (B, 3, H, W), masks (B, H, W))`` batches.

    Logs ``train/loss``, ``train/acc`` (of the labelled pixels), ``{val,test}/loss``,
    ``{val,test}/acc`` (pixel accuracy) and ``{val,test}/miou``; with ``--wandb true`` a few
    validation images with their true and predicted masks.

    Args:
        arch: ``fcn_resnet18`` (the course's), ``fcn_resnet50``, ``deeplabv3_resnet50``, ...
        num_classes: linked from the data module (background included).
        in_channels: linked from the data module.
        arch_kwargs: further keyword arguments for the builder (``backbone``, ``weights``, ...).
        class_names: names for the W&B masks' legend (default: the indices).
        **kwargs: optimizer and schedule settings, see ``ZooTask`` (course: SGD, lr 1e-3, wd 1e-3).
    """

    monitor = ("val/miou", "max")

    def __init__(
        self,
        arch: str = "fcn_resnet18",
        num_classes: int = 21,
        in_channels: int = 3,
        arch_kwargs: dict[str, Any] | None = None,
        class_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.model = self.build_model(arch, num_classes=num_classes, in_channels=in_channels, **(arch_kwargs or {}))
        # masks come from our own data modules: skip torchmetrics' per-step input checks
        self.val_confmat = MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX, validate_args=False)
        self.test_confmat = MulticlassConfusionMatrix(num_classes, ignore_index=IGNORE_INDEX, validate_args=False)
        self.class_labels = {i: name for i, name in enumerate(class_names or map(str, range(num_classes)))}
        self.class_labels[IGNORE_INDEX] = "ignored"
        self._samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        x, y = batch[0], batch[1]  # (B, 3, H, W), (B, H, W)
        logits = self.model(x)  # (B, C, H, W)
        loss = F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX)
        # epoch means weighted by images (an int, so no device sync per step; crops have equal sizes)
        log = {"on_step": False, "on_epoch": True, "batch_size": len(y), "sync_dist": True}
        pred = logits.argmax(1)  # (B, H, W)
        if stage == "train":
            labelled = y != IGNORE_INDEX
            acc = ((pred == y) & labelled).sum() / labelled.sum().clamp(min=1)
            self.log_dict({"train/loss": loss, "train/acc": acc}, prog_bar=True, **log)
            return loss
        getattr(self, f"{stage}_confmat").update(pred, y)
        self.log(f"{stage}/loss", loss, prog_bar=True, **log)
        if stage == "val" and len(self._samples) < MEDIA_SAMPLES and wandb_logger(self.trainer) is not None:
            take = MEDIA_SAMPLES - len(self._samples)
            self._samples += list(zip(x[:take].cpu(), y[:take].cpu(), pred[:take].cpu(), strict=True))
        return loss

    def _log_scores(self, stage: str) -> None:
        confmat: MulticlassConfusionMatrix = getattr(self, f"{stage}_confmat")
        found = scores(confmat.compute())  # compute() sums every process's matrix
        self.log_dict({f"{stage}/{k}": v.float() for k, v in found.items()}, prog_bar=True)
        confmat.reset()

    def on_validation_epoch_start(self) -> None:
        self._samples = []

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")
        samples, self._samples = self._samples, []
        if samples:
            images = [_displayable(x) for x, _, _ in samples]
            masks = [{"predictions": {"mask_data": p.numpy().astype(np.uint8), "class_labels": self.class_labels},
                      "ground_truth": {"mask_data": y.numpy().astype(np.uint8), "class_labels": self.class_labels}}
                     for _, y, p in samples]  # fmt: skip
            log_images(self.trainer, "val/masks", images, masks=masks)

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self.model(x).argmax(1)


def _displayable(x: torch.Tensor) -> np.ndarray:
    """A normalised ``(3, H, W)`` image as ``(H, W, 3)`` uint8 for display, stretched to its own
    range (the task does not know the data's normalisation)."""
    x = x.float()
    x = (x - x.min()) / (x.max() - x.min()).clamp(min=1e-6)
    return (x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
