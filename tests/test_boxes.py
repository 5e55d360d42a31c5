"""Box maths against the course's worked examples (d2l section 13.4) and torchvision."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import box_iou, nms

from zoo.ops.boxes import (
    anchor_boxes,
    assign_anchors,
    decode_offsets,
    encode_offsets,
    multibox_detection,
    multibox_target,
    reference_box_iou,
    reference_nms,
)

# the course's dog and cat (class 0 and 1) and its five anchors, as fractions of the image
GROUND_TRUTH = torch.tensor([[0, 0.1, 0.08, 0.52, 0.92], [1, 0.55, 0.2, 0.9, 0.88]])
ANCHORS = torch.tensor([[0, 0.1, 0.2, 0.3], [0.15, 0.2, 0.4, 0.4], [0.63, 0.05, 0.88, 0.98],
                        [0.66, 0.45, 0.8, 0.8], [0.57, 0.3, 0.92, 0.9]])  # fmt: skip


def _random_boxes(n: int, generator: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator)
    wh = torch.rand(n, 2, generator=generator) * 0.5 + 0.01
    return torch.cat((xy, xy + wh), dim=1)


def test_anchor_boxes_reproduce_the_course_on_its_catdog_image():
    h, w = 561, 728
    anchors = anchor_boxes((h, w), sizes=[0.75, 0.5, 0.25], ratios=[1, 2, 0.5])
    assert anchors.shape == (h * w * 5, 4)  # n + m - 1 = 5 a pixel: 2042040 in all
    cell = anchors.reshape(h, w, 5, 4)[250, 250]
    torch.testing.assert_close(cell[0], torch.tensor([0.0551, 0.0715, 0.6331, 0.8215]), atol=1e-4, rtol=0)
    # in pixels: the course's shapes (s, r) have width/height r and area (s * h)^2
    px = cell * torch.tensor([w, h, w, h])
    width, height = px[:, 2] - px[:, 0], px[:, 3] - px[:, 1]
    shapes = torch.tensor([[0.75, 1], [0.5, 1], [0.25, 1], [0.75, 2], [0.75, 0.5]])
    torch.testing.assert_close(width / height, shapes[:, 1])
    torch.testing.assert_close(width * height, (shapes[:, 0] * h) ** 2)
    centre = (px[:, :2] + px[:, 2:]) / 2
    torch.testing.assert_close(centre, torch.tensor([250.5, 250.5]).expand(5, 2), atol=1e-2, rtol=0)  # pixel centres


def test_anchor_boxes_need_sizes_and_ratios():
    assert anchor_boxes((2, 3), [0.1, 0.2, 0.3], [1, 2]).shape == (2 * 3 * 4, 4)
    with pytest.raises(ValueError, match="at least one size"):
        anchor_boxes((2, 2), [], [1])


def test_multibox_target_reproduces_the_course_example():
    targets = multibox_target(ANCHORS, [GROUND_TRUTH[:, 1:]], [GROUND_TRUTH[:, 0]])
    assert targets.classes.tolist() == [[0, 1, 2, 0, 2]]  # background, dog, cat, background, cat
    assert targets.masks.reshape(-1).tolist() == [0.0] * 4 + [1.0] * 8 + [0.0] * 4 + [1.0] * 4
    course = torch.tensor([0, 0, 0, 0, 1.40, 10.00, 2.59, 7.18, -1.20, 0.27, 1.68, -1.57,
                           0, 0, 0, 0, -0.57, -1.00, 0.00, 0.63])  # fmt: skip
    torch.testing.assert_close(targets.offsets.reshape(-1), course, atol=5e-3, rtol=0)


def test_assignment_greedy_then_threshold():
    # anchor 1 overlaps the dog by IoU 0.14 only, yet it is the dog's best anchor: greedy wins
    assert box_iou(ANCHORS[1:2], GROUND_TRUTH[:1, 1:]).item() < 0.5
    assert assign_anchors(ANCHORS, GROUND_TRUTH[:, 1:]).tolist() == [-1, 0, 1, -1, 1]
    # a lower threshold lets anchor 3 (IoU 0.21 with the cat) learn too
    assert assign_anchors(ANCHORS, GROUND_TRUTH[:, 1:], iou_threshold=0.2).tolist() == [-1, 0, 1, 1, 1]
    # a box that overlaps no anchor at all is not pinned on an arbitrary one (the course's code would)
    far = torch.tensor([[5.0, 5.0, 6.0, 6.0]])
    assert assign_anchors(ANCHORS, far).tolist() == [-1] * 5
    # more boxes than anchors: each anchor still gets at most one
    assert assign_anchors(ANCHORS[:1], GROUND_TRUTH[:, 1:]).tolist() == [0]


def test_an_anchor_exactly_at_the_iou_threshold_is_assigned():
    """``>=`` as the course's ``assign_anchor_to_bbox``: IoU exactly 0.5 (1/2 in binary, no
    rounding) learns from the box; a hair below does not."""
    box = torch.tensor([[0.0, 0.0, 2.0, 1.0]])
    anchors = torch.tensor([[0.0, 0.0, 2.0, 1.0],  # the box itself: its greedy match
                            [0.0, 0.0, 1.0, 1.0],  # half the box: IoU 1/2
                            [0.0, 0.0, 0.99, 1.0]])  # fmt: skip
    iou = box_iou(anchors, box)[:, 0]
    assert iou[1].item() == 0.5 and iou[2].item() < 0.5
    assert assign_anchors(anchors, box, iou_threshold=0.5).tolist() == [0, 0, -1]
    assert assign_anchors(anchors, box, iou_threshold=0.500001).tolist() == [0, -1, -1]


def test_multibox_target_batches_images_with_any_number_of_boxes():
    empty = torch.zeros(0, 4)
    targets = multibox_target(ANCHORS, [GROUND_TRUTH[:, 1:], empty, GROUND_TRUTH[1:, 1:]],
                              [GROUND_TRUTH[:, 0], torch.zeros(0), GROUND_TRUTH[1:, 0]])  # fmt: skip
    assert targets.offsets.shape == targets.masks.shape == (3, 5, 4) and targets.classes.shape == (3, 5)
    assert targets.classes[1].eq(0).all() and targets.masks[1].eq(0).all() and targets.offsets[1].eq(0).all()
    assert targets.classes[2].tolist() == [0, 0, 2, 0, 2]
    with pytest.raises(ValueError, match="2 box tensors for 1 label"):
        multibox_target(ANCHORS, [empty, empty], [torch.zeros(0)])


def test_offsets_round_trip_and_stay_finite():
    g = torch.Generator().manual_seed(0)
    anchors, boxes = _random_boxes(50, g), _random_boxes(50, g)
    torch.testing.assert_close(decode_offsets(anchors, encode_offsets(anchors, boxes)), boxes, atol=1e-5, rtol=0)
    # batched offsets broadcast over shared anchors, as a model's (B, A, 4) output does
    offsets = torch.randn(3, 50, 4, generator=g)
    assert decode_offsets(anchors, offsets).shape == (3, 50, 4)
    assert torch.isfinite(decode_offsets(anchors, torch.full((50, 4), 1e4))).all()


def test_multibox_detection_reproduces_the_course_nms_demo():
    anchors = torch.tensor([[0.1, 0.08, 0.52, 0.92], [0.08, 0.2, 0.56, 0.95],
                            [0.15, 0.3, 0.62, 0.91], [0.55, 0.2, 0.9, 0.88]])  # fmt: skip
    probs = torch.tensor([[0.0] * 4, [0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.9]]).T  # (A, background/dog/cat)
    (out,) = multibox_detection(probs.unsqueeze(0), torch.zeros(1, 4, 4), anchors, nms_threshold=0.5)
    assert out["labels"].tolist() == [0, 1]  # the dog at 0.9 and the cat at 0.9; dog 0.8 and 0.7 suppressed
    torch.testing.assert_close(out["scores"], torch.tensor([0.9, 0.9]))
    torch.testing.assert_close(out["boxes"], anchors[[0, 3]])


def test_multibox_detection_per_class_nms_threshold_and_limit():
    anchors = torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.11, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]])
    probs = torch.tensor([[[0.1, 0.9, 0.0], [0.2, 0.0, 0.8], [0.995, 0.005, 0.0]]])  # (1, A, 3)
    (out,) = multibox_detection(probs, torch.zeros(1, 3, 4), anchors)
    assert out["labels"].tolist() == [0, 1]  # the overlapping boxes are of two classes: both stay
    assert out["scores"].tolist() == pytest.approx([0.9, 0.8])  # anchor 2 (0.005) under the threshold
    (top,) = multibox_detection(probs, torch.zeros(1, 3, 4), anchors, max_detections=1)
    assert top["labels"].tolist() == [0]
    (none,) = multibox_detection(probs, torch.zeros(1, 3, 4), anchors, score_threshold=0.95)
    assert none["boxes"].shape == (0, 4)


def test_course_iou_and_nms_agree_with_torchvision():
    g = torch.Generator().manual_seed(1)
    a, b = _random_boxes(30, g), _random_boxes(20, g)
    torch.testing.assert_close(reference_box_iou(a, b), box_iou(a, b))
    scores = torch.rand(30, generator=g)
    for threshold in (0.3, 0.5, 0.7):
        assert reference_nms(a, scores, threshold).tolist() == nms(a, scores, threshold).tolist()
    assert reference_nms(a[:0], scores[:0], 0.5).numel() == 0
