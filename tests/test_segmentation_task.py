"""The segmentation task: the loss and metrics ignore 255, mIoU comes from one confusion matrix
over the whole split (checked by hand), the recipe runs, and under two-process CPU DDP the logged
validation mIoU is the whole split's."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from ddp import fit_in_subprocess
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassJaccardIndex

from datamodules import VOCSegmentation
from scripts.make_shapes_segmentation import CLASSES
from scripts.make_shapes_segmentation import main as make_shapes
from zoo.cli.fit import main as fit
from zoo.core.checkpoint import load_task
from zoo.tasks import Segmentation, segmentation
from zoo.tasks.segmentation import scores

ROOT = Path(__file__).parents[1]
X = 255  # ignored


class OneHot(nn.Module):
    """A "model" whose logits are its input: the batches carry the predictions as one-hot maps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def batch(pred: list[list[int]], label: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.tensor(pred)[None]  # (1, H, W)
    return F.one_hot(p, 3).permute(0, 3, 1, 2).float(), torch.tensor(label)[None]


def test_miou_is_the_whole_splits_from_one_confusion_matrix():
    # batch 1: 8 labelled pixels (the 2 ignored ones predicted as class 2, which must not count)
    b1 = batch([[0, 0, 1, 1, 2], [0, 1, 1, 2, 2]], [[0, 0, 1, 1, X], [0, 0, 1, 2, X]])
    b2 = batch([[2, 2], [0, 1]], [[2, 1], [0, 1]])  # batch 2: 4 pixels
    # (label, prediction) pairs counted by hand: b1 (0,0) x3, (0,1), (1,1) x3, (2,2); b2 (2,2), (1,2), (0,0), (1,1)
    # confusion matrix: label 0 -> [4, 1, 0], label 1 -> [0, 4, 1], label 2 -> [0, 0, 2]
    iou = [4 / (5 + 4 - 4), 4 / (5 + 5 - 4), 2 / (2 + 3 - 2)]  # diag / (row + column - diag)
    acc = (4 + 4 + 2) / 12
    per_batch_mean = ((3 / 4 + 3 / 4 + 1) / 3 + (1 + 1 / 2 + 1 / 2) / 3) / 2  # what averaging batches gives

    task = Segmentation(arch="fcn_resnet18", num_classes=3, arch_kwargs={"width": 4})
    task.model = OneHot()
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    logged = trainer.validate(task, dataloaders=DataLoader([b1, b2], batch_size=None), verbose=False)[0]
    assert logged["val/miou"] == pytest.approx(sum(iou) / 3, abs=1e-6)
    assert logged["val/acc"] == pytest.approx(acc, abs=1e-6)
    assert per_batch_mean != pytest.approx(logged["val/miou"], abs=1e-2)
    # torchmetrics' Jaccard index over the same pixels agrees
    jaccard = MulticlassJaccardIndex(3, ignore_index=X)
    for x, y in (b1, b2):
        jaccard.update(x.argmax(1), y)
    assert float(jaccard.compute()) == pytest.approx(logged["val/miou"], abs=1e-6)


def test_validation_logs_images_with_true_and_predicted_masks(monkeypatch):
    calls = []
    monkeypatch.setattr(segmentation, "wandb_logger", lambda trainer: object())  # as if --wandb true
    monkeypatch.setattr(segmentation, "log_images", lambda trainer, key, images, **kw: calls.append((key, images, kw)))
    b1 = batch([[0, 1], [2, 2]], [[0, 1], [X, 2]])
    b2 = batch([[1, 1], [0, 0]], [[1, 0], [0, 0]])
    task = Segmentation(arch="fcn_resnet18", num_classes=3, arch_kwargs={"width": 4}, class_names=["bg", "a", "b"])
    task.model = OneHot()
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.validate(task, dataloaders=DataLoader([b1, b2], batch_size=None), verbose=False)
    [(key, images, kw)] = calls
    assert key == "val/masks" and len(images) == 2 and images[0].shape == (2, 2, 3) and images[0].dtype.name == "uint8"
    first = kw["masks"][0]
    assert first["predictions"]["mask_data"].tolist() == [[0, 1], [2, 2]]
    assert first["ground_truth"]["mask_data"].tolist() == [[0, 1], [X, 2]]
    assert first["predictions"]["class_labels"] == {0: "bg", 1: "a", 2: "b", X: "ignored"}


def test_loss_ignores_255_and_absent_classes_leave_the_mean():
    logits = torch.randn(1, 3, 2, 2)
    y = torch.tensor([[[0, X], [1, X]]])
    task = Segmentation(arch="fcn_resnet18", num_classes=3, arch_kwargs={"width": 4})
    task.model = OneHot()
    labelled = torch.stack([logits[0, :, 0, 0], logits[0, :, 1, 0]])  # the two pixels not ignored
    assert float(task._step((logits, y), "train")) == pytest.approx(
        float(F.cross_entropy(labelled, torch.tensor([0, 1]))), abs=1e-6
    )
    only_two = torch.tensor([[3, 1, 0], [1, 5, 0], [0, 0, 0]])  # class 2 never labelled nor predicted
    assert float(scores(only_two)["miou"]) == pytest.approx((3 / 5 + 5 / 7) / 2)


def shapes(root: Path, train: int = 16, val: int = 8, size: int = 40) -> Path:
    make_shapes(["--out", str(root), "--train", str(train), "--val", str(val), "--min_size", str(size), str(size),
                 "--max_size", str(size), str(size)])  # fmt: skip
    return root


def fit_args(data: Path, root: Path, *extra: str) -> list[str]:
    return ["--config", str(ROOT / "configs" / "fcn_shapes.yaml"), "--data.init_args.data_dir", str(data),
            "--data.init_args.crop_size", "[32, 32]", "--data.init_args.batch_size", "4",
            "--model.init_args.arch_kwargs", "{width: 4}", "--trainer.default_root_dir", str(root),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", *extra]  # fmt: skip


def test_recipe_fast_dev_run(tmp_path):
    summary = fit(fit_args(shapes(tmp_path / "data", 4, 2), tmp_path, "--trainer.fast_dev_run", "1"))
    assert 0 <= summary["test"]["test/miou"] <= 1 and 0 <= summary["test"]["test/acc"] <= 1


def _whole_split_scores(task: Segmentation, dm: VOCSegmentation, indices) -> dict[str, float]:
    confmat = torch.zeros(len(CLASSES), len(CLASSES), dtype=torch.long)
    with torch.no_grad():
        for i in indices:
            x, y = dm._val[i]
            pred = task.model(x[None]).argmax(1)[0]
            keep = y != X
            confmat.index_put_((y[keep], pred[keep]), torch.tensor(1), accumulate=True)
    return {k: float(v) for k, v in scores(confmat).items()}


def test_two_process_ddp_logs_the_whole_splits_miou(tmp_path):
    data = shapes(tmp_path / "data")  # 8 validation images halve evenly over 2 ranks: no padding
    args = fit_args(data, tmp_path, "--name", "ddp", "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
                    "--trainer.strategy", "ddp", "--trainer.devices", "2")  # fmt: skip
    metrics = fit_in_subprocess(args, tmp_path / "ddp" / "version_0", timeout=180)
    task = load_task(metrics["best_checkpoint"], Segmentation).eval()
    dm = VOCSegmentation(data_dir=str(data), classes=list(CLASSES), crop_size=None, download=False)
    dm.setup()
    whole = _whole_split_scores(task, dm, range(8))
    assert metrics["best_val"]["val/miou"] == pytest.approx(whole["miou"], abs=1e-5)
    assert metrics["test"]["test/miou"] == pytest.approx(whole["miou"], abs=1e-5)  # the test split is val
    assert metrics["test"]["test/acc"] == pytest.approx(whole["acc"], abs=1e-5)
    # and the test can tell: either rank's half alone gives another mIoU
    for r in (0, 1):
        assert _whole_split_scores(task, dm, range(r, 8, 2))["miou"] != pytest.approx(whole["miou"], abs=1e-4)


def test_a_bad_mask_stops_the_run_before_training_and_leaves_no_run_folder(tmp_path, capsys):
    data = shapes(tmp_path / "data", 4, 2)
    Image.new("RGB", (40, 40)).save(data / "VOCdevkit/VOC2012/SegmentationClass/train_00003.png")
    with pytest.raises(SystemExit, match=r"SegmentationClass: masks that are not palette .*train_00003\.png \(RGB\)"):
        fit(fit_args(data, tmp_path / "runs", "--name", "bad"), one_line_errors=True)
    assert not list((tmp_path / "runs").glob("bad/version_*"))
