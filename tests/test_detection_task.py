"""The Detection task: the course's loss and figures for TinySSD, torchvision's loss dict for its
detectors, mAP through torchmetrics' faster_coco_eval backend checked against pycocotools, and
zoo.fit recipes on YOLO and COCO files written here."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_detection_data import write_coco, write_yolo
from torchmetrics.detection import MeanAveragePrecision

from zoo.cli.fit import main as fit
from zoo.core.checkpoint import load_task
from zoo.ops.boxes import multibox_target
from zoo.tasks import Detection

ROOT = Path(__file__).parents[1]


def fit_args(data: Path, out: Path, *extra: str) -> list[str]:
    """The TinySSD banana recipe, shrunk to 64-pixel images and a few steps."""
    return ["--config", str(ROOT / "configs/tiny_ssd_banana.yaml"), "--data.init_args.data_dir", str(data),
            "--data.init_args.image_size", "64", "--data.init_args.batch_size", "4",
            "--data.init_args.classes", "[banana]",
            "--trainer.default_root_dir", str(out), "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.max_epochs", "2", *extra]  # fmt: skip


def fit_tiny_ssd(tmp_path: Path, *extra: str) -> dict:
    data = write_yolo(tmp_path / "yolo", {"train": 8, "valid": 4, "test": 4})
    return fit(fit_args(data, tmp_path / "runs", "--name", "tiny", *extra))


def test_tiny_ssd_loss_is_the_course_loss_on_images_with_any_number_of_boxes():
    torch.manual_seed(0)
    task = Detection("tiny_ssd", num_classes=2)
    images = torch.rand(3, 3, 64, 64)
    two = torch.tensor([[4.0, 4.0, 30.0, 40.0], [30.0, 10.0, 60.0, 60.0]])
    targets = [{"boxes": two, "labels": torch.tensor([0, 1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
               {"boxes": torch.tensor([[10.0, 10.0, 50.0, 50.0]]), "labels": torch.tensor([1])}]  # fmt: skip
    loss, class_err, bbox_mae, (anchors, logits, offsets) = task.anchor_loss(images, targets)
    # the course's calc_loss, written out: per-image means of CE over anchors and of masked L1
    gt = multibox_target(anchors, [t["boxes"] / 64 for t in targets], [t["labels"] for t in targets])
    cls = F.cross_entropy(logits.reshape(-1, 3), gt.classes.reshape(-1), reduction="none").reshape(3, -1).mean(1)
    box = (offsets * gt.masks - gt.offsets * gt.masks).abs().mean((1, 2))
    assert loss.item() == pytest.approx((cls + box).mean().item(), rel=1e-6)
    assert gt.masks[1].sum() == 0 and gt.masks[0].sum() > 0  # the empty image: all background
    assert class_err.item() == pytest.approx((logits.argmax(-1) != gt.classes).float().mean().item())
    assert bbox_mae.item() == pytest.approx(box.mean().item(), rel=1e-6)
    loss.backward()
    assert all(p.grad is not None for p in task.model.parameters())
    task.eval()
    dets = task.detect(images)
    assert len(dets) == 3 and all(d["boxes"].shape[1] == 4 and (d["labels"] < 2).all() for d in dets)
    assert max(float(d["boxes"].max()) for d in dets if len(d["boxes"])) > 1.5  # in pixels, not fractions


def test_class_weights_reweigh_the_anchor_loss_and_are_checked():
    torch.manual_seed(0)
    images, targets = torch.rand(1, 3, 64, 64), [{"boxes": torch.tensor([[4.0, 4.0, 40.0, 40.0]]),
                                                  "labels": torch.tensor([0])}]  # fmt: skip
    plain = Detection("tiny_ssd", num_classes=2)
    heavy = Detection("tiny_ssd", num_classes=2, class_weights=[10.0, 1.0])
    heavy.model.load_state_dict(plain.model.state_dict())
    assert heavy.anchor_loss(images, targets)[0] > plain.anchor_loss(images, targets)[0]
    with pytest.raises(ValueError, match="1 weights for 2 classes"):
        Detection("tiny_ssd", num_classes=2, class_weights=[1.0])


def _coco_eval(preds: list[dict], targets: list[dict], thresholds: tuple | None = None) -> np.ndarray:
    """pycocotools' 12 summary figures on the same boxes (xyxy -> COCO's xywh); ``thresholds``:
    other IoU and recall thresholds than pycocotools' own."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b):
        return [b[0], b[1], b[2] - b[0], b[3] - b[1]]

    images = [{"id": i, "width": 200, "height": 200} for i in range(len(targets))]
    anns = [{"id": len(images) * 100 + k + 1000 * i, "image_id": i, "category_id": int(lab), "bbox": xywh(b.tolist()),
             "area": float((b[2] - b[0]) * (b[3] - b[1])), "iscrowd": 0}
            for i, t in enumerate(targets) for k, (b, lab) in enumerate(zip(t["boxes"], t["labels"]))]  # fmt: skip
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c} for c in range(3)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([{"image_id": i, "category_id": int(lab), "bbox": xywh(b.tolist()), "score": float(s)}
                         for i, p in enumerate(preds)
                         for b, s, lab in zip(p["boxes"], p["scores"], p["labels"])])  # fmt: skip
        ev = COCOeval(gt, dt, "bbox")
        if thresholds is not None:
            ev.params.iouThrs, ev.params.recThrs = (np.array(t, dtype=np.float64) for t in thresholds)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_faster_coco_eval_map_equals_pycocotools_on_the_same_predictions():
    rng = np.random.default_rng(0)
    preds, targets = [], []
    for _ in range(12):
        n = int(rng.integers(0, 5))
        xy = rng.uniform(0, 120, (n, 2))
        gt = np.hstack([xy, xy + rng.uniform(8, 80, (n, 2))])
        # detections: jittered copies of the truth, some with another class, plus false alarms
        m = n + int(rng.integers(0, 3))
        xy = rng.uniform(0, 120, (m, 2))
        det = np.hstack([xy, xy + rng.uniform(8, 80, (m, 2))])
        det[:n] = gt + rng.normal(0, 6, (n, 4))
        det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
        labels = rng.integers(0, 3, n)
        targets.append({"boxes": torch.tensor(gt, dtype=torch.float32), "labels": torch.tensor(labels)})
        det_labels = np.concatenate([np.where(rng.random(n) < 0.8, labels, rng.integers(0, 3, n)),
                                     rng.integers(0, 3, m - n)])  # fmt: skip
        preds.append({"boxes": torch.tensor(det, dtype=torch.float32), "scores": torch.tensor(rng.random(m)),
                      "labels": torch.tensor(det_labels)})  # fmt: skip
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="faster_coco_eval", class_metrics=True)
    metric.update(preds, targets)
    ours = metric.compute()
    # torchmetrics passes its thresholds as float32 values (0.550000011920929, recall 0.00999999977...):
    # on the same thresholds pycocotools gives the same figures to float precision ...
    stats = _coco_eval(preds, targets, (metric.iou_thresholds, metric.rec_thresholds))
    assert 0.05 < stats[0] < 0.95  # neither trivial nor perfect: the check can tell
    for i, key in enumerate(["map", "map_50", "map_75", "map_small", "map_medium", "map_large"]):
        assert ours[key].item() == pytest.approx(stats[i], abs=1e-6), key
    assert ours["mar_100"].item() == pytest.approx(stats[8], abs=1e-6)
    # ... and on pycocotools' own float64 thresholds a recall that lands on a threshold may fall on
    # the other side of it: within 1e-3 here
    own = _coco_eval(preds, targets)
    assert abs(ours["map"].item() - own[0]) < 1e-3 and abs(ours["map_50"].item() - own[1]) < 3e-3


def test_fit_tiny_ssd_logs_map_and_course_figures_and_saves_classes(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)  # offline: W&B writes its files into the run folder
    summary = fit_tiny_ssd(tmp_path, "--wandb", "true", "--trainer.max_epochs", "1")
    test, best = summary["test"], summary["best_val"]
    for key in ("test/map", "test/map_50", "test/map_75", "test/ap_banana", "test/class_err", "test/bbox_mae",
                "test/loss"):  # fmt: skip
        assert key in test and np.isfinite(test[key]), key
    assert "val/map_50" in best
    metrics = json.loads(Path(summary["metrics_file"]).read_text())
    task = load_task(metrics["best_checkpoint"], Detection)
    assert task.classes == ["banana"] and task.image_size == 64
    csv = (Path(summary["metrics_file"]).parent / "metrics.csv").read_text().splitlines()[0]
    assert "train/class_err" in csv and "train/bbox_mae" in csv
    # a few validation images with their predicted and true boxes, as W&B media
    media = next((tmp_path / "runs").glob("tiny/version_0/wandb/offline-run-*/files/media"))
    assert list(media.glob("images/val/detections_*.png"))
    boxes = [json.loads(p.read_text()) for p in media.glob("metadata/boxes2D/val/detections_*.json")]
    assert any(b["box_data"] for b in boxes) and all(b["class_labels"] == {"0": "banana"} for b in boxes)


def test_fit_a_torchvision_detector_on_coco_files(tmp_path):
    data, _ = write_coco(tmp_path / "coco", n=6, size=(96, 80))
    args = ["--model.class_path", "zoo.tasks.Detection", "--model.init_args.arch", "fasterrcnn_mobilenet_v3_large_fpn",
            "--model.init_args.arch_kwargs",
            "{min_size: 64, max_size: 96, rpn_pre_nms_top_n_test: 100, rpn_post_nms_top_n_test: 50}",
            "--model.init_args.lr", "0.01",
            "--data.class_path", "datamodules.CocoDetection", "--data.init_args.data_dir", str(data),
            "--data.init_args.image_size", "null", "--data.init_args.val_size", "2",
            "--data.init_args.batch_size", "2", "--data.init_args.augment", "flip",
            "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "1", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--name", "frcnn"]  # fmt: skip
    summary = fit(args)
    assert {"test/map", "test/map_50", "test/ap_belt", "test/ap_hat"} <= set(summary["test"])
    assert "test/class_err" not in summary["test"]  # the course's figures are an anchor model's
    lines = (Path(summary["metrics_file"]).parent / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss_classifier" in lines and "train/loss_rpn_box_reg" in lines
