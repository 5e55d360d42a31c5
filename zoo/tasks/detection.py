"""Object detection (the course's lectures 41-46): one task for anchor models (the course's
TinySSD) and torchvision's detectors, on ``(images, targets)`` batches of
``datamodules.detection`` (targets a list of ``{"boxes": (G, 4) xyxy pixels, "labels": (G,)}``,
any number of boxes per image).

Anchor models (``model.returns_anchors``) train on the course's loss: cross-entropy over every
anchor's class (background 0) plus L1 over the offsets of the anchors that have a box, each
averaged over the anchors of an image, then over the images (d2l section 13.7, ``calc_loss``).
They also log the course's class error (the fraction of anchors whose class is wrong) and bbox
MAE (mean absolute offset error, background anchors counted as 0), as ``train/class_err`` and
``train/bbox_mae`` (the course's printed figures) and for validation and test. torchvision's
detectors train on the sum of their own loss dict (each term logged too).

Validation and test score the detections with torchmetrics' ``MeanAveragePrecision`` (the
``faster_coco_eval`` backend): ``map`` (COCO's mAP@[.5:.95]), ``map_50``, ``map_75`` and per-class
AP as ``ap_<class>``; its state is every image's boxes, gathered from every process before it is
computed, so under DDP the figures are those of the whole split.
"""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.detection import MeanAveragePrecision

from zoo.core.errors import ConfigError
from zoo.ops.boxes import multibox_detection, multibox_target
from zoo.tasks.base import EpochMean, Init, ZooTask
from zoo.tasks.media import MEDIA_SAMPLES, log_images

Batch = tuple[Any, list[dict[str, torch.Tensor]]]
#: detections scored lower are not drawn on the W&B sample images
SHOWN_SCORE = 0.3


class Detection(ZooTask):
    """Trains ``arch`` (``tiny_ssd`` or a torchvision detector of ``zoo.models.detectors``).

    Class names (from the data module at fit time) and the image size are stored in every
    checkpoint, so ``zoo detect`` needs no data files.

    Args:
        arch: a registered detector.
        num_classes: object classes (no background), linked from the data module.
        arch_kwargs: further keyword arguments for the builder (e.g. ``min_size``, ``weights``).
        init: ``default``, ``xavier`` or ``normal`` (anchor models only).
        iou_threshold: an anchor learns from a box it overlaps at least this much (anchor models).
        nms_threshold: non-maximum suppression's IoU (anchor models; torchvision's have their own).
        score_threshold: detections scored lower are dropped before mAP (anchor models).
        max_detections: most detections per image (anchor models; COCO scores 100).
        class_weights: per object class weight of the anchor classification loss (anchor models;
            the background keeps weight 1), for imbalanced classes.
        **kwargs: optimizer and schedule settings, see ``ZooTask`` (course: SGD lr 0.2, wd 5e-4).
    """

    monitor = ("val/map_50", "max")
    data_state = {"classes": None, "image_size": None}  # image_size: None for the torchvision detectors

    def __init__(
        self,
        arch: str = "tiny_ssd",
        num_classes: int = 1,
        arch_kwargs: dict[str, Any] | None = None,
        init: Init = "default",
        iou_threshold: float = 0.5,
        nms_threshold: float = 0.5,
        score_threshold: float = 0.01,
        max_detections: int = 100,
        class_weights: list[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.model = self.build_model(arch, init, num_classes=num_classes, **(arch_kwargs or {}))
        self.anchor_model = bool(getattr(self.model, "returns_anchors", False))
        if class_weights is not None and len(class_weights) != num_classes:
            raise ConfigError(f"class_weights has {len(class_weights)} weights for {num_classes} classes")
        if class_weights is not None and not self.anchor_model:
            raise ConfigError(f"class_weights weigh the anchor loss; {arch} has torchvision's own loss")
        weights = None if class_weights is None else torch.tensor([1.0, *class_weights])
        self.register_buffer("class_weights", weights, persistent=False)
        for stage in ("val", "test"):
            mean_ap = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=True,
                                           backend="faster_coco_eval")  # fmt: skip
            setattr(self, f"{stage}_map", mean_ap)
            for name in ("loss", "class_err", "bbox_mae"):
                setattr(self, f"{stage}_{name}", EpochMean())
        self.classes: list[str] = [str(k) for k in range(num_classes)]
        self.image_size: int | None = None
        self._samples: list[tuple[torch.Tensor, dict, dict]] = []

    # -- the two kinds of model ------------------------------------------------------------------
    def anchor_loss(self, images: torch.Tensor, targets: list[dict]) -> tuple[torch.Tensor, ...]:
        """The course's loss of an anchor model, its class error and bbox MAE, and its outputs."""
        if not torch.is_tensor(images):
            raise ConfigError(f"{self.hparams.arch} needs images of one size: give the data module an image_size")
        anchors, logits, offsets = self.model(images)  # (A, 4), (B, A, C + 1), (B, A, 4)
        scale = _frame(images)  # pixels -> the anchors' fractions of the image
        gt = multibox_target(anchors, [t["boxes"] / scale for t in targets], [t["labels"] for t in targets],
                             self.hparams.iou_threshold)  # fmt: skip
        cls = F.cross_entropy(logits.flatten(0, 1), gt.classes.flatten(), weight=self.class_weights, reduction="none")
        box = F.l1_loss(offsets * gt.masks, gt.offsets * gt.masks, reduction="none")  # (B, A, 4)
        loss = cls.view(len(targets), -1).mean(1) + box.mean((1, 2))  # (B,): the course's calc_loss
        class_err = (logits.argmax(-1) != gt.classes).float().mean()
        bbox_mae = box.detach().mean()  # the course's bbox_eval: |masked offset error| per offset
        return loss.mean(), class_err, bbox_mae, (anchors, logits, offsets)

    @torch.no_grad()
    def detect(self, images: Any, outputs: tuple | None = None) -> list[dict[str, torch.Tensor]]:
        """Detections per image, ``{"boxes": (N, 4) xyxy pixels, "scores", "labels"}`` with
        classes counted from 0 (the model must be in eval mode)."""
        if not self.anchor_model:
            return [{**d, "labels": d["labels"] - 1} for d in self.model(list(images))]  # torchvision keeps 0
        anchors, logits, offsets = self.model(images) if outputs is None else outputs
        hp = self.hparams
        dets = multibox_detection(logits.softmax(-1), offsets, anchors, hp.nms_threshold, hp.score_threshold,
                                  hp.max_detections)  # fmt: skip
        scale = _frame(images)
        # boxes inside the image, as torchvision's detectors give them (the course leaves them as decoded)
        return [{**d, "boxes": torch.minimum((d["boxes"] * scale).clamp(min=0), scale)} for d in dets]

    def _step(self, batch: Batch, stage: str) -> torch.Tensor | None:
        images, targets = batch
        n = len(targets)
        if self.anchor_model:
            loss, class_err, bbox_mae, outputs = self.anchor_loss(images, targets)
            figures = {"loss": loss, "class_err": class_err, "bbox_mae": bbox_mae}
        elif stage == "train":
            torchvision_targets = [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in targets]
            losses = self.model(list(images), torchvision_targets)
            loss = sum(losses.values())
            figures = {"loss": loss, **losses}
        else:  # torchvision's detectors compute no loss in eval mode
            loss, figures, outputs = None, {}, None
        if stage == "train":
            self.log_dict({f"train/{k}": v.detach() for k, v in figures.items()}, on_step=False, on_epoch=True,
                          batch_size=n, prog_bar=True, sync_dist=True)  # fmt: skip
            return loss
        for name, value in figures.items():
            metric: EpochMean = getattr(self, f"{stage}_{name}")
            metric.update(value.detach(), weight=n)
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, batch_size=n, prog_bar=name == "loss")
        preds = self.detect(images, outputs)
        getattr(self, f"{stage}_map").update(preds, [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets])
        if stage == "val" and len(self._samples) < MEDIA_SAMPLES:
            self._samples += list(zip(images, preds, targets))[: MEDIA_SAMPLES - len(self._samples)]
        return loss

    def predict_step(self, batch: Batch, batch_idx: int) -> list[dict[str, torch.Tensor]]:
        """Detections in each image's original pixels (targets carry the original ``size``)."""
        images, targets = batch
        dets = self.detect(images)
        out = []
        for image, det, t in zip(images, dets, targets):
            h, w = (int(v) for v in t["size"])
            factor = torch.tensor([w / image.shape[-1], h / image.shape[-2]] * 2, device=det["boxes"].device)
            out.append({**det, "boxes": det["boxes"] * factor})
        return out

    # -- epoch ends: mAP of the whole split, and a few samples to W&B ----------------------------
    def _log_map(self, stage: str) -> None:
        metric: MeanAveragePrecision = getattr(self, f"{stage}_map")
        result = metric.compute()  # every process's boxes, gathered
        self.log_dict({f"{stage}/{k}": result[k] for k in ("map", "map_50", "map_75")}, prog_bar=True)
        per_class = result["map_per_class"].reshape(-1)
        for label, ap in zip(result["classes"].reshape(-1).tolist(), per_class):
            self.log(f"{stage}/ap_{_slug(self.classes[label])}", ap)
        metric.reset()

    def on_validation_epoch_start(self) -> None:
        self._samples = []

    def on_validation_epoch_end(self) -> None:
        self._log_map("val")
        samples, self._samples = self._samples, []
        if samples:
            labels = dict(enumerate(self.classes))
            log_images(self.trainer, "val/detections", [im.float().cpu() for im, _, _ in samples],
                       boxes=[{"predictions": _wandb_boxes(p, labels), "ground_truth": _wandb_boxes(t, labels)}
                              for _, p, t in samples])  # fmt: skip

    def on_test_epoch_end(self) -> None:
        self._log_map("test")


def _frame(images: Any) -> torch.Tensor:
    """``[W, H, W, H]`` of a batch of equally sized images."""
    h, w = images.shape[-2:] if torch.is_tensor(images) else images[0].shape[-2:]
    device = images.device if torch.is_tensor(images) else images[0].device
    return torch.tensor([w, h, w, h], dtype=torch.float32, device=device)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower() or "class"


def _wandb_boxes(det: dict[str, torch.Tensor], labels: dict[int, str]) -> dict[str, Any]:
    """Boxes in W&B's ``box_data`` form (pixels), with the score when there is one."""
    scores = det.get("scores")
    rows = []
    for k, (box, label) in enumerate(zip(det["boxes"].tolist(), det["labels"].tolist())):
        row = {"position": dict(zip(("minX", "minY", "maxX", "maxY"), box)), "domain": "pixel",
               "class_id": int(label), "box_caption": labels.get(int(label), str(label))}  # fmt: skip
        if scores is not None:
            if scores[k] < SHOWN_SCORE:
                continue
            row["scores"] = {"score": float(scores[k])}
            row["box_caption"] += f" {float(scores[k]):.2f}"
        rows.append(row)
    return {"box_data": rows, "class_labels": labels}
