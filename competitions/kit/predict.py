"""Predicting the test rows with every fold's checkpoint, with optional flip TTA, and
averaging the folds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from datamodules.base import ZooDataModule
from zoo.core.checkpoint import CheckpointError, load_datamodule, load_task
from zoo.tasks.base import ZooTask


class FlipTTA(L.LightningModule):
    """Wraps a task for ``Trainer.predict``: its ``predict_step`` output (class probabilities
    for classification), averaged with the output on the mirrored images when ``flip``.
    Only image batches ``(B, C, H, W)`` are flipped; tabular rows pass through unchanged."""

    def __init__(self, task: L.LightningModule, flip: bool) -> None:
        super().__init__()
        self.task, self.flip = task, flip

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self.task.on_after_batch_transfer(batch, dataloader_idx)  # e.g. the task's memory layout

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        out = self.task.predict_step((x,), batch_idx)
        if self.flip and x.ndim == 4:
            out = (out + self.task.predict_step((x.flip(-1),), batch_idx)) / 2
        return out


def load_fold(checkpoint: str | Path) -> tuple[ZooTask, ZooDataModule]:
    """The task and the data module of one fold, rebuilt from the checkpoint alone (classes,
    arguments and fitted state, e.g. class names or house-price preprocessing, are in the file)."""
    return load_task(checkpoint, ZooTask), load_datamodule(checkpoint, ZooDataModule)


def predict_folds(checkpoints: list[str], tta: bool) -> tuple[list[str], np.ndarray, list[str] | None]:
    """Test ids, the mean over folds of the predictions, and the class names (from the first
    checkpoint; other folds' columns are matched to them by name, never by position)."""
    trainer = L.Trainer(accelerator="auto", devices=1, logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False)  # fmt: skip
    ids: list[str] | None = None
    classes: list[str] | None = None
    total: np.ndarray | None = None
    for ckpt in checkpoints:
        task, data = load_fold(ckpt)
        data.setup("predict")
        if getattr(data, "predict_ids", None) is None:
            raise CheckpointError(f"{ckpt}: its data module, {type(data).__name__}, lists no test rows to predict")
        out = trainer.predict(FlipTTA(task, tta), dataloaders=data.predict_dataloader())
        pred = torch.cat(out).float().cpu().numpy()  # (N, classes) or (N, 1)
        fold_classes = getattr(data, "classes", None)
        if ids is None:
            ids, classes = list(data.predict_ids), fold_classes
        elif list(data.predict_ids) != ids:
            raise CheckpointError(f"{ckpt}: its data module lists other test ids than the first fold's")
        if classes is not None:
            if sorted(fold_classes) != sorted(classes):
                raise CheckpointError(f"{ckpt}: trained on other classes than the first fold")
            pred = pred[:, [fold_classes.index(c) for c in classes]]
        total = pred if total is None else total + pred
    assert ids is not None and total is not None, "no checkpoints to predict with"
    return ids, total / len(checkpoints), classes


def predict_detection_folds(checkpoints: list[str], nms_threshold: float = 0.5, max_detections: int = 100
                            ) -> tuple[list, list[dict[str, torch.Tensor]], list[int]]:  # fmt: skip
    """Test ids, per test image the detections of every fold's model together (in the image's
    pixels; with several folds, merged by per-class NMS at ``nms_threshold``, best
    ``max_detections`` kept), and the category ids of the labels (the first fold's data module;
    every fold must have the same)."""
    from torchvision.ops import batched_nms

    trainer = L.Trainer(accelerator="auto", devices=1, logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False)  # fmt: skip
    ids, categories, merged = None, None, None
    for ckpt in checkpoints:
        task, data = load_fold(ckpt)
        data.setup("predict")
        fold_categories = getattr(data, "category_ids", None)
        if getattr(data, "predict_ids", None) is None or fold_categories is None:
            raise CheckpointError(f"{ckpt}: its data module, {type(data).__name__}, lists no test images "
                                  "and categories")  # fmt: skip
        dets = [d for batch in trainer.predict(task, dataloaders=data.predict_dataloader()) for d in batch]
        if ids is None:
            ids, categories, merged = list(data.predict_ids), list(fold_categories), [[d] for d in dets]
        elif list(data.predict_ids) != ids or list(fold_categories) != categories:
            raise CheckpointError(f"{ckpt}: its data module lists other test images or categories than the "
                                  "first fold's")  # fmt: skip
        else:
            for kept, d in zip(merged, dets, strict=True):
                kept.append(d)
    assert ids is not None and merged is not None, "no checkpoints to predict with"
    out = []
    for parts in merged:
        d = {k: torch.cat([p[k] for p in parts]) for k in ("boxes", "scores", "labels")}
        if len(parts) > 1:  # sorted best first, as NMS returns them
            keep = batched_nms(d["boxes"].float(), d["scores"].float(), d["labels"], nms_threshold)
        else:
            keep = torch.argsort(d["scores"], descending=True)
        out.append({k: v[keep[:max_detections]] for k, v in d.items()})
    return ids, out, categories
