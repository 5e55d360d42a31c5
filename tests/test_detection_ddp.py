"""Detection under two-process CPU DDP (gloo): the logged validation and test mAP are those of the
whole split (every image's boxes gathered before COCO's evaluation), not of one rank's half."""

from __future__ import annotations

from pathlib import Path

import pytest
from ddp import fit_in_subprocess
from test_detection_data import write_yolo
from test_detection_task import fit_args
from torchmetrics.detection import MeanAveragePrecision

from datamodules import YoloDetection
from datamodules.detection import collate
from zoo.core.checkpoint import load_task
from zoo.tasks import Detection

ROOT = Path(__file__).parents[1]


def _map(task: Detection, samples: list) -> dict[str, float]:
    images, targets = collate(samples)
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="faster_coco_eval")
    metric.update(task.detect(images), [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets])
    return {k: float(v) for k, v in metric.compute().items() if k in ("map", "map_50")}


def test_two_process_ddp_logs_the_map_of_the_whole_split(tmp_path):
    # 6 validation and 6 test images halve evenly over 2 ranks, so DistributedSampler pads nothing
    data = write_yolo(tmp_path / "yolo", {"train": 8, "valid": 6, "test": 6})
    args = fit_args(data, tmp_path, "--name", "ddp", "--trainer.max_epochs", "1", "--data.init_args.batch_size", "2",
                    "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.devices", "2")  # fmt: skip
    metrics = fit_in_subprocess(args, tmp_path / "ddp" / "version_0", timeout=240)

    task = load_task(metrics["best_checkpoint"], Detection).eval()  # epoch 0: the weights validated and tested
    dm = YoloDetection(str(data), image_size=64)
    dm.setup("fit")
    for stage, split, logged in (("test", dm._test, metrics["test"]), ("val", dm._val, metrics["best_val"])):
        whole = _map(task, [split[i] for i in range(len(split))])
        assert whole["map_50"] > 0, stage  # an untrained model still finds a little: the halves can differ
        assert logged[f"{stage}/map_50"] == pytest.approx(whole["map_50"], abs=1e-6), stage
        if stage == "test":
            assert logged["test/map"] == pytest.approx(whole["map"], abs=1e-6)
            halves = [_map(task, [split[i] for i in range(r, len(split), 2)])["map"] for r in (0, 1)]
            assert all(h != pytest.approx(whole["map"], abs=1e-6) for h in halves)  # the test can tell
