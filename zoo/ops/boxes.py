"""Box maths of the course's single-shot detector (d2l sections 13.4-13.7, lectures 44-46; SSD:
Liu et al., 2016, "SSD: Single Shot MultiBox Detector").

Boxes are ``(x_min, y_min, x_max, y_max)`` rows, in whatever frame the anchors use (the course
uses fractions of the image width and height). Conversion, IoU and NMS are torchvision's
(``box_convert``, ``box_iou``, ``batched_nms``); the course's own IoU and NMS are kept as
``reference_box_iou`` and ``reference_nms``, tested equal to torchvision's, for teaching only.

Where this departs from the course's code it says so: detection drops suppressed and low-score
boxes instead of padding the batch with class -1 rows, NMS is per class (the course's runs over
all classes at once), decoding bounds the width and height factors, and a ground-truth box that
overlaps no anchor at all is left unassigned instead of going to an arbitrary one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor
from torchvision.ops import batched_nms, box_convert, box_iou

from zoo.core.errors import ConfigError

#: the course's offset scaling: centres in units of 0.1 anchor sizes, log-sizes in units of 0.2
#: (SSD's "variances"), so that the targets have roughly unit spread
CENTRE_VARIANCE, SIZE_VARIANCE = 0.1, 0.2
#: the largest size factor decoding applies (torchvision's BoxCoder bound): an untrained net's
#: large offsets give large boxes rather than infinite ones that NMS cannot compare
MAX_LOG_SCALE = math.log(1000.0 / 16)


def anchor_boxes(
    feature_size: Sequence[int],
    sizes: Sequence[float],
    ratios: Sequence[float],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The course's anchors (``multibox_prior``): ``len(sizes) + len(ratios) - 1`` boxes centred
    on every cell of an ``(H, W)`` feature map, as fractions of the image.

    The shapes are every size with the first ratio, then the first size with the other ratios
    (all ``n * m`` pairs would be too many). A box of size ``s`` and ratio ``r`` is
    ``s * sqrt(r)`` image heights wide and ``s / sqrt(r)`` high, so ``r`` is its width-to-height
    ratio in pixels also on a non-square map. Returns ``(H * W * (n + m - 1), 4)``, cell by cell
    in row-major order, the shapes of one cell together.
    """
    if not sizes or not ratios:
        raise ConfigError(f"anchor_boxes needs at least one size and one ratio, got {sizes} and {ratios}")
    height, width = int(feature_size[0]), int(feature_size[1])
    s = torch.as_tensor(sizes, dtype=dtype, device=device)
    r = torch.as_tensor(ratios, dtype=dtype, device=device)
    shape_s = torch.cat((s, s[:1].expand(len(r) - 1)))  # (k,) with k = n + m - 1
    shape_r = torch.cat((r[:1].expand(len(s)), r[1:]))
    half_w = shape_s * shape_r.sqrt() * (height / width) / 2  # in image widths
    half_h = shape_s / shape_r.sqrt() / 2  # in image heights
    cy = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height
    cx = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width
    cy, cx = torch.meshgrid(cy, cx, indexing="ij")
    centres = torch.stack((cx, cy, cx, cy), dim=-1).reshape(-1, 1, 4)  # (H*W, 1, 4)
    extents = torch.stack((-half_w, -half_h, half_w, half_h), dim=-1)  # (k, 4)
    return (centres + extents).reshape(-1, 4)  # (H*W*k, 4)


def assign_anchors(anchors: Tensor, gt_boxes: Tensor, iou_threshold: float = 0.5) -> Tensor:
    """The index of the ground-truth box each anchor learns from, -1 for background (the
    course's ``assign_anchor_to_bbox``).

    Every ground-truth box first gets the anchor it overlaps most, greedily: take the largest
    IoU left in the ``(anchors, boxes)`` matrix, assign that pair, strike out its row and column,
    repeat. Every other anchor takes the box it overlaps most if that IoU is at least
    ``iou_threshold``. ``anchors (A, 4)``, ``gt_boxes (G, 4)`` -> ``(A,)`` int64.
    """
    num_anchors, num_gt = anchors.shape[0], gt_boxes.shape[0]
    assigned = torch.full((num_anchors,), -1, dtype=torch.long, device=anchors.device)
    if num_gt == 0 or num_anchors == 0:
        return assigned
    iou = box_iou(anchors, gt_boxes)  # (A, G)
    best_iou, best_gt = iou.max(dim=1)
    above = best_iou >= iou_threshold
    assigned[above] = best_gt[above]
    iou = iou.clone()
    for _ in range(min(num_gt, num_anchors)):
        flat = iou.argmax()
        a, g = flat // num_gt, flat % num_gt
        # tensor ops only (no .item()): the loop never waits for the GPU
        assigned[a] = torch.where(iou[a, g] > 0, g, assigned[a])
        iou[a, :] = -1
        iou[:, g] = -1
    return assigned


def encode_offsets(anchors: Tensor, boxes: Tensor, eps: float = 1e-6) -> Tensor:
    """The course's offsets of ``boxes`` from their ``anchors`` (``offset_boxes``): centre shift
    over the anchor's size and the log of the size ratio, scaled by 1/0.1 and 1/0.2.
    Both ``(..., 4)`` corner boxes (broadcast) -> ``(..., 4)``."""
    a = box_convert(anchors, "xyxy", "cxcywh")
    b = box_convert(boxes, "xyxy", "cxcywh")
    centre = (b[..., :2] - a[..., :2]) / a[..., 2:] / CENTRE_VARIANCE
    size = torch.log(eps + b[..., 2:] / a[..., 2:]) / SIZE_VARIANCE
    return torch.cat((centre, size), dim=-1)


def decode_offsets(anchors: Tensor, offsets: Tensor) -> Tensor:
    """The boxes that ``offsets`` make of ``anchors``, the inverse of ``encode_offsets`` (the
    course's ``offset_inverse``). ``anchors (..., 4)``, ``offsets (..., 4)`` -> ``(..., 4)``."""
    a = box_convert(anchors, "xyxy", "cxcywh")
    centre = offsets[..., :2] * CENTRE_VARIANCE * a[..., 2:] + a[..., :2]
    size = torch.exp((offsets[..., 2:] * SIZE_VARIANCE).clamp(max=MAX_LOG_SCALE)) * a[..., 2:]
    return box_convert(torch.cat((centre, size), dim=-1), "cxcywh", "xyxy")


class MultiboxTargets(NamedTuple):
    """What an anchor model learns from, in the course's order (``multibox_target``)."""

    offsets: Tensor  #: (B, A, 4) encoded offsets of each anchor's box, 0 for background anchors
    masks: Tensor  #: (B, A, 4) 1.0 where the anchor has a box, so only those count in the L1 loss
    classes: Tensor  #: (B, A) int64: 0 background, k + 1 for object class k


def multibox_target(
    anchors: Tensor,
    boxes: Sequence[Tensor],
    labels: Sequence[Tensor],
    iou_threshold: float = 0.5,
) -> MultiboxTargets:
    """Class and offset targets of every anchor for a batch of images (the course's
    ``multibox_target``).

    ``anchors (A, 4)``; per image, ``boxes[i] (G_i, 4)`` in the anchors' frame and
    ``labels[i] (G_i,)`` object classes counted from 0. Each image has its own number of boxes
    (none is fine: all its anchors are background), so no padding rows reach the maths.
    """
    if len(boxes) != len(labels):
        raise ConfigError(f"{len(boxes)} box tensors for {len(labels)} label tensors")
    offsets, masks, classes = [], [], []
    for gt, lab in zip(boxes, labels):
        gt, lab = gt.to(anchors), lab.to(anchors.device, torch.long)
        assigned = assign_anchors(anchors, gt, iou_threshold)  # (A,)
        positive = assigned >= 0
        mask = positive.unsqueeze(-1).expand(-1, 4).to(anchors.dtype)  # (A, 4)
        if len(gt):
            idx = assigned.clamp(min=0)  # background anchors look up box 0, then are masked out
            cls = torch.where(positive, lab[idx] + 1, 0)
            off = encode_offsets(anchors, gt[idx]) * mask
        else:  # an image without objects: every anchor is background
            cls, off = torch.zeros_like(assigned), torch.zeros_like(anchors)
        offsets.append(off)
        masks.append(mask)
        classes.append(cls)
    return MultiboxTargets(torch.stack(offsets), torch.stack(masks), torch.stack(classes))


def multibox_detection(
    class_probs: Tensor,
    offsets: Tensor,
    anchors: Tensor,
    nms_threshold: float = 0.5,
    score_threshold: float = 0.01,
    max_detections: int | None = None,
) -> list[dict[str, Tensor]]:
    """Detections of an anchor model (the course's ``multibox_detection``).

    Each anchor becomes one box: its offsets decoded, its most probable object class and that
    probability as the score. Boxes under ``score_threshold`` are dropped, then non-maximum
    suppression at ``nms_threshold`` within each class; at most ``max_detections`` per image
    (all by default), best first.

    ``class_probs (B, A, C + 1)`` with the background first (softmax of the class logits; the
    course's own function takes them transposed), ``offsets (B, A, 4)``, ``anchors (A, 4)``.
    Returns per image ``{"boxes": (N, 4), "scores": (N,), "labels": (N,)}`` with object classes
    counted from 0: the layout of torchvision's detectors and torchmetrics' mAP.
    """
    boxes = decode_offsets(anchors, offsets)  # (B, A, 4)
    scores, labels = class_probs[..., 1:].max(dim=-1)  # (B, A): best object class per anchor
    out = []
    for b in range(class_probs.shape[0]):
        # thresholding first keeps exactly the course's survivors (a box under the threshold
        # could only have suppressed boxes scoring lower still) and gives NMS fewer boxes
        keep = torch.nonzero(scores[b] >= score_threshold).squeeze(1)
        keep = keep[batched_nms(boxes[b, keep], scores[b, keep], labels[b, keep], nms_threshold)]
        if max_detections is not None:
            keep = keep[:max_detections]
        out.append({"boxes": boxes[b, keep], "scores": scores[b, keep], "labels": labels[b, keep]})
    return out


def reference_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """The course's pairwise IoU, written out for teaching; ``torchvision.ops.box_iou`` is what
    runs. ``(N, 4)``, ``(M, 4)`` -> ``(N, M)``."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    top_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=-1)  # (N, M)
    return inter / (area1[:, None] + area2[None, :] - inter)


def reference_nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """The course's non-maximum suppression, written out for teaching: keep the best box, drop
    every box that overlaps it by more than ``iou_threshold``, repeat on the rest.
    ``torchvision.ops.nms`` is what runs. Returns the kept indices, best first."""
    order = scores.argsort(descending=True)
    keep = []
    while order.numel():
        best = order[0]
        keep.append(best)
        iou = reference_box_iou(boxes[best].unsqueeze(0), boxes[order[1:]]).squeeze(0)
        order = order[1:][iou <= iou_threshold]
    return torch.stack(keep) if keep else order
