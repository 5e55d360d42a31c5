"""TinySSD as the course builds it, and torchvision's detectors built offline or from a local
weights file (only through the zoo's safe loader)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import FrozenBatchNorm2d

from zoo.core.checkpoint import CheckpointError
from zoo.models.detectors import load_detector_weights
from zoo.models.registry import create_model
from zoo.models.ssd import RATIOS, SIZES
from zoo.ops.boxes import anchor_boxes, multibox_detection, multibox_target

SMALL = {"min_size": 64, "max_size": 64}


def test_tiny_ssd_has_the_course_shapes_at_256():
    model = create_model("tiny_ssd").eval()
    with torch.no_grad():
        anchors, logits, offsets = model(torch.rand(2, 3, 256, 256))
    # feature maps 32, 16, 8, 4 and 1 a side, 4 anchors a cell: 5444 anchors, as in the course
    assert anchors.shape == (5444, 4) and logits.shape == (2, 5444, 2) and offsets.shape == (2, 5444, 4)
    # the first scale's anchors in anchor_boxes' order, so each head channel meets its anchor
    torch.testing.assert_close(anchors[: 32 * 32 * 4], anchor_boxes((32, 32), SIZES[0], RATIOS))
    assert [m.out_channels for m in model.class_heads] == [4 * 2] * 5
    assert [m.out_channels for m in model.box_heads] == [4 * 4] * 5


def test_tiny_ssd_trains_through_the_box_maths():
    """Forward, the course's loss on multibox targets, backward, then decoded detections."""
    torch.manual_seed(0)
    model = create_model("tiny_ssd", num_classes=2)
    anchors, logits, offsets = model(torch.rand(2, 3, 64, 64))
    boxes = [torch.tensor([[0.2, 0.2, 0.7, 0.8]]), torch.tensor([[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.9]])]
    targets = multibox_target(anchors, boxes, [torch.tensor([1]), torch.tensor([0, 1])])
    assert (targets.classes > 0).sum(1).ge(torch.tensor([1, 2])).all()  # every box has an anchor
    loss = F.cross_entropy(logits.flatten(0, 1), targets.classes.flatten()) + F.l1_loss(
        offsets * targets.masks, targets.offsets * targets.masks
    )
    loss.backward()
    assert torch.isfinite(loss) and model.box_heads[0].weight.grad.abs().sum() > 0
    dets = multibox_detection(logits.detach().softmax(-1), offsets.detach(), anchors, max_detections=10)
    assert len(dets) == 2 and all(d["boxes"].shape[0] == d["scores"].shape[0] <= 10 for d in dets)
    assert all(d["labels"].lt(2).all() for d in dets)


def test_tiny_ssd_rejects_other_scales():
    with pytest.raises(ValueError, match="five scales"):
        create_model("tiny_ssd", sizes=SIZES[:4])
    with pytest.raises(ValueError, match="as many anchor sizes"):
        create_model("tiny_ssd", sizes=(*SIZES[:4], (0.88,)))


def test_other_models_build_without_torchvision():
    """torchvision costs seconds of start-up: only a detector's build or forward loads it (and no
    model loads Lightning)."""
    code = ("import sys; from zoo.models.registry import create_model, list_models; create_model('lenet'); "
            "create_model('tiny_ssd'); assert 'tiny_ssd' in list_models(); "
            "print(sorted({'torchvision', 'lightning'} & set(sys.modules)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_detector_weights_from_a_local_file(tmp_path):
    torch.manual_seed(0)
    source = create_model("fasterrcnn_mobilenet_v3_large_fpn", num_classes=2, **SMALL)
    # as torchvision's own download stores them: no BatchNorm step counters
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = str(tmp_path / "coco.pth")
    torch.save(state, path)
    with pytest.warns(UserWarning, match="4 head tensors keep their initial values"):
        model = create_model("fasterrcnn_mobilenet_v3_large_fpn", num_classes=3, weights=path, **SMALL)
    assert model.keeps_weights
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.backbone.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules())
    own = model.state_dict()
    for key in ("backbone.fpn.layer_blocks.0.0.weight", "backbone.body.0.1.running_var"):
        torch.testing.assert_close(own[key], state[key])
    assert own["roi_heads.box_predictor.cls_score.weight"].shape[0] == 3 + 1  # the new classes' head
    model.eval()
    with torch.no_grad():
        (out,) = model([torch.rand(3, 64, 64)])
    assert set(out) == {"boxes", "scores", "labels"}


def test_detector_weights_from_a_zoo_checkpoint_and_refused_files(tmp_path):
    model = create_model("ssdlite320_mobilenet_v3_large", num_classes=1)
    ckpt = {"state_dict": {f"model.{k}": v + 1 if v.is_floating_point() else v for k, v in model.state_dict().items()},
            "hyper_parameters": {"arch": "ssdlite320_mobilenet_v3_large"}}  # fmt: skip
    torch.save(ckpt, tmp_path / "last.ckpt")
    assert load_detector_weights(model, tmp_path / "last.ckpt") == []
    key = "head.regression_head.module_list.0.1.weight"
    torch.testing.assert_close(model.state_dict()[key], ckpt["state_dict"][f"model.{key}"])

    torch.save(create_model("tiny_ssd").state_dict(), tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not weights of this SSD"):
        load_detector_weights(model, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no such file"):
        create_model("ssdlite320_mobilenet_v3_large", weights=str(tmp_path / "missing.pth"))

    marker = tmp_path / "ran"
    torch.save({"x": _RunsCode(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refused"):
        load_detector_weights(model, tmp_path / "evil.pth")
    assert not marker.exists()


class _RunsCode:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))  # would run if the file were unpickled without weights_only
