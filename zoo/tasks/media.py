"""W&B media beside the curves: a few validation samples per validation run, as images (with
boxes or masks drawn by W&B) or as a table, logged only when the run has a W&B logger.

Tasks call these from ``on_validation_epoch_end`` (or a validation step) on samples they keep;
without ``--wandb true`` they return at once, so a task need not check. Only global rank 0
logs (W&B is a rank-0 logger in Lightning), and nothing here imports wandb unless it is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from zoo.core.errors import ConfigError

#: how many validation samples a task shows per validation run
MEDIA_SAMPLES = 4


def wandb_logger(trainer: L.Trainer | None) -> WandbLogger | None:
    """The run's W&B logger, or None when there is none (or this is not global rank 0)."""
    if trainer is None or trainer.global_rank != 0 or trainer.sanity_checking:
        return None
    return next((lg for lg in trainer.loggers if isinstance(lg, WandbLogger)), None)


def log_images(trainer: L.Trainer | None, key: str, images: Sequence[Any], **per_image: Sequence[Any]) -> bool:
    """Log ``images`` (HWC uint8 arrays, CHW tensors or PIL images) under ``key`` at the current
    step. ``per_image`` are lists of the same length passed to ``wandb.Image`` one by one:
    ``caption=[...]``, ``boxes=[{"predictions": {"box_data": [...], "class_labels": {...}}}]``,
    ``masks=[{"predictions": {"mask_data": array, "class_labels": {...}}}]``. Returns whether it logged."""
    logger = wandb_logger(trainer)
    if logger is None or not images:
        return False
    for name, values in per_image.items():
        if len(values) != len(images):
            raise ConfigError(f"log_images: {len(values)} {name} for {len(images)} images")
    lists = {name: list(values) for name, values in per_image.items()}
    logger.log_image(key=key, images=list(images), step=trainer.global_step, **lists)
    return True


def log_table(trainer: L.Trainer | None, key: str, columns: list[str], rows: Sequence[Sequence[Any]]) -> bool:
    """Log a table (e.g. source, reference and prediction of a few validation sentences)."""
    logger = wandb_logger(trainer)
    if logger is None or not rows:
        return False
    logger.log_table(key=key, columns=columns, data=[list(r) for r in rows], step=trainer.global_step)
    return True
