"""``python -m zoo predict`` on image files written from the test set: the classes and the
preprocessing come from the checkpoint, the CSV's accuracy is zoo.fit's test accuracy, bad
images are named (and skipped only when asked), other tasks' checkpoints point elsewhere."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
import torch
from test_hostile_inputs import declaring_png

from datamodules.fashion_mnist import CLASSES, read_idx
from zoo.cli.predict import main
from zoo.core.checkpoint import CheckpointError
from zoo.core.problems import DataError


@pytest.fixture(scope="module")
def test_pngs(fashion_classifier, tmp_path_factory):
    """The 100 test images as PNG files in two folders, and their true class names."""
    _, data, _ = fashion_classifier
    images = read_idx(data / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(data / "t10k-labels-idx1-ubyte.gz")
    folder = tmp_path_factory.mktemp("pngs")
    truth = {}
    for i, (img, y) in enumerate(zip(images.numpy(), labels.tolist())):
        path = folder / ("a" if i < 50 else "b") / f"{i:03d}.png"
        path.parent.mkdir(exist_ok=True)
        assert cv2.imwrite(str(path), img)
        truth[str(path)] = CLASSES[y]
    return folder, truth


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_accuracy_is_the_fit_test_accuracy(fashion_classifier, test_pngs, tmp_path):
    ckpt, _, summary = fashion_classifier
    folder, truth = test_pngs
    out = tmp_path / "pred.csv"
    # a folder, a glob and a file (already listed: kept once)
    main(["--ckpt_path", str(ckpt), str(folder / "a"), str(folder / "b" / "*.png"), str(folder / "a" / "000.png"),
          "--out", str(out), "--top_k", "3", "--batch_size", "16"])  # fmt: skip
    rows = _read(out)
    assert list(rows[0]) == ["path", "class", "probability", "class_2", "probability_2", "class_3", "probability_3"]
    assert sorted(r["path"] for r in rows) == sorted(truth)
    for r in rows:
        p = [float(r["probability"]), float(r["probability_2"]), float(r["probability_3"])]
        assert p == sorted(p, reverse=True) and sum(p) <= 1 + 1e-5
        assert {r["class"], r["class_2"], r["class_3"]} <= set(CLASSES)
    accuracy = np.mean([r["class"] == truth[r["path"]] for r in rows])
    assert accuracy > 0.5  # the classifier learned something, so equality below means something
    assert accuracy == pytest.approx(summary["test"]["test/acc"], abs=1e-9)


def test_an_unreadable_image_is_named_and_skipped_only_when_asked(fashion_classifier, test_pngs, tmp_path, capsys):
    ckpt, _, _ = fashion_classifier
    folder, _ = test_pngs
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    good = [str(folder / "a" / f"{i:03d}.png") for i in range(3)]
    with pytest.raises(ValueError, match=r"broken\.png: not a readable image.*--skip_bad"):
        main(["--ckpt_path", str(ckpt), *good, str(bad), "--out", str(tmp_path / "p.csv")])
    assert not (tmp_path / "p.csv").exists()
    rows = main(["--ckpt_path", str(ckpt), *good, str(bad), "--skip_bad", "--out", str(tmp_path / "p.csv")])
    assert [r["path"] for r in rows] == good and len(_read(tmp_path / "p.csv")) == 3
    assert f"skipped: {bad} (not a readable image" in capsys.readouterr().err
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(declaring_png(20000, 20000))  # 400 megapixels declared: refused before decoding
    with pytest.raises(DataError, match=r"bomb\.png: declares more than 178,956,970 pixels.*--skip_bad"):
        main(["--ckpt_path", str(ckpt), *good, str(bomb)])


def test_an_rgb_file_is_read_as_grey_for_a_grey_model(fashion_classifier, test_pngs, tmp_path):
    ckpt, _, _ = fashion_classifier
    folder, _ = test_pngs
    grey = folder / "a" / "007.png"
    rgb = tmp_path / "007.jpg"
    cv2.imwrite(str(rgb), cv2.cvtColor(cv2.imread(str(grey), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 100])  # fmt: skip
    a, b = main(["--ckpt_path", str(ckpt), str(grey), str(rgb), "--top_k", "1"])
    assert a["class"] == b["class"] and abs(a["probability"] - b["probability"]) < 0.05


@pytest.mark.parametrize(("task", "command"), [("zoo.tasks.LanguageModel", "zoo generate"),
                                               ("zoo.tasks.Seq2Seq", "zoo translate"),
                                               ("zoo.tasks.Detection", "zoo detect"),
                                               ("zoo.tasks.Segmentation", "zoo segment")])  # fmt: skip
def test_another_tasks_checkpoint_names_its_command(task, command, tmp_path):
    ckpt = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": task, "arch": "x"}}, ckpt)
    with pytest.raises(CheckpointError, match=rf"holds a {task.rsplit('.', 1)[1]} model.*python -m {command} "):
        main(["--ckpt_path", str(ckpt), str(tmp_path)])


def test_a_checkpoint_without_class_names_is_refused(fashion_classifier, test_pngs, tmp_path):
    ckpt, _, _ = fashion_classifier
    folder, _ = test_pngs
    old = torch.load(ckpt, weights_only=True)
    del old["classes"], old["preprocessing"]
    torch.save(old, tmp_path / "old.ckpt")
    with pytest.raises(CheckpointError, match="records no classes, preprocessing, which a Classification keeps"):
        main(["--ckpt_path", str(tmp_path / "old.ckpt"), str(folder / "a")])


def test_inputs_that_name_nothing_are_errors(fashion_classifier, tmp_path):
    ckpt, _, _ = fashion_classifier
    with pytest.raises(FileNotFoundError, match="nope.png: no such file or folder"):
        main(["--ckpt_path", str(ckpt), str(tmp_path / "nope.png")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: no image files"):
        main(["--ckpt_path", str(ckpt), str(tmp_path / "empty")])
