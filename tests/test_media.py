"""W&B media: samples reach an offline W&B run as image (with boxes) and table files; without a
W&B logger, or off rank 0, nothing is logged."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from zoo.tasks.media import log_images, log_table


def _trainer(loggers, rank=0):
    return SimpleNamespace(global_rank=rank, sanity_checking=False, loggers=loggers, global_step=7)


def test_images_with_boxes_and_a_table_reach_an_offline_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(project="media-test", save_dir=str(tmp_path), offline=True)
    boxes = {"predictions": {"box_data": [{"position": {"minX": 2, "minY": 2, "maxX": 12, "maxY": 9},
                                           "domain": "pixel", "class_id": 1, "box_caption": "banana 0.90"}],
                             "class_labels": {1: "banana"}}}  # fmt: skip
    image, other = np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), 200, np.uint8)  # W&B dedups equal files
    try:
        assert log_images(_trainer([logger]), "val/samples", [image, other], caption=["a", "b"], boxes=[boxes, boxes])
        assert log_table(_trainer([logger]), "val/predictions", ["input", "prediction"], [["x", "y"]])
        with pytest.raises(ValueError, match="1 caption for 2 images"):
            log_images(_trainer([logger]), "val/samples", [image, image], caption=["a"])
    finally:
        logger.experiment.finish()
    media = next(tmp_path.glob("wandb/offline-run-*/files/media"))
    assert len(list(media.glob("images/val/samples_*.png"))) == 2
    assert list(media.glob("metadata/boxes2D/val/samples_*.json"))  # one file: both images carry the same boxes
    assert list(media.glob("table/val/predictions_*.table.json"))


def test_nothing_is_logged_without_wandb_or_off_rank_zero(tmp_path):
    image = np.zeros((4, 4, 3), np.uint8)
    assert not log_images(_trainer([CSVLogger(tmp_path)]), "val/samples", [image])
    assert not log_table(None, "val/predictions", ["a"], [["b"]])
    wandb = WandbLogger(project="media-test", save_dir=str(tmp_path), offline=True)
    assert not log_images(_trainer([wandb], rank=1), "val/samples", [image])  # never starts a run
