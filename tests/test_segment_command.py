"""``zoo segment`` on a checkpoint that ``zoo.fit`` wrote: a VOC-palette mask PNG (class indices)
and an overlay per image, at the image's size; bad inputs are one line naming the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_hostile_inputs import declaring_png
from test_segmentation_task import fit_args, shapes

from datamodules.voc import voc_palette
from zoo.cli.fit import main as fit
from zoo.cli.segment import main as segment
from zoo.cli.segment import overlay
from zoo.core.checkpoint import CheckpointError, load_task
from zoo.core.problems import DataError
from zoo.tasks import Segmentation

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("segment")
    fit(fit_args(shapes(root / "data", 4, 2), root, "--trainer.max_epochs", "1", "--name", "tiny"))
    return root / "tiny" / "version_0" / "checkpoints" / "last.ckpt"


def test_segment_writes_a_palette_mask_and_an_overlay(ckpt, tmp_path, capsys):
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    Image.fromarray(rng.integers(0, 255, (37, 51, 3), dtype=np.uint8)).save(tmp_path / "in" / "odd.png")
    Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(tmp_path / "in" / "b.jpg")
    written = segment(["--ckpt_path", str(ckpt), str(tmp_path / "in" / "odd.png"), str(tmp_path / "in" / "b.jpg"),
                       "--out", str(tmp_path / "out")])  # fmt: skip
    assert [(m.name, o.name) for m, o in written] == [
        ("odd_mask.png", "odd_overlay.png"),
        ("b_mask.png", "b_overlay.png"),
    ]
    mask = Image.open(tmp_path / "out" / "odd_mask.png")
    assert mask.mode == "P" and mask.size == (51, 37) and mask.getpalette()[:63] == voc_palette()[:63]
    indices = np.array(mask)
    assert indices.max() < 5  # class indices of the 5-class model, not colours
    # the mask is the model's prediction on the image normalised as in training (ImageNet's statistics)
    task = load_task(ckpt, Segmentation).eval()
    x = torch.from_numpy(np.array(Image.open(tmp_path / "in" / "odd.png"))).float().div(255).permute(2, 0, 1)
    x = (x - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        assert np.array_equal(task.model(x[None]).argmax(1)[0].numpy(), indices)
    blend = Image.open(tmp_path / "out" / "b_overlay.png")
    assert blend.mode == "RGB" and blend.size == (48, 64)
    assert "odd.png: " in capsys.readouterr().out


def test_overlay_blends_only_objects():
    image = np.full((2, 2, 3), 100, np.uint8)
    mask = np.array([[0, 1], [0, 0]], np.uint8)
    out = overlay(image, mask, alpha=0.5)
    assert (out[0, 0] == 100).all() and tuple(out[0, 1]) == (114, 50, 50)  # half of VOC's (128, 0, 0)


def test_bad_inputs_are_one_line(ckpt, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(declaring_png(20000, 20000))  # 400 megapixels declared: refused before decoding
    with pytest.raises(DataError, match=r"bomb\.png: declares more than 178,956,970 pixels"):
        segment(["--ckpt_path", str(ckpt), str(bomb), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"missing\.jpg: no such image file"):
        segment(["--ckpt_path", str(ckpt), str(tmp_path / "missing.jpg"), "--out", str(tmp_path)])
    torch.save({"weight": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match=r"plain\.pt: not a zoo\.fit checkpoint"):
        segment(["--ckpt_path", str(tmp_path / "plain.pt"), str(tmp_path / "missing.jpg")])
    with pytest.raises(ValueError, match="several images are named a"):
        segment(["--ckpt_path", str(ckpt), "x/a.png", "y/a.jpg"])
    command = [sys.executable, "-m", "zoo", "segment", "--ckpt_path", str(tmp_path / "nothing.ckpt"), "a.png"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nothing.ckpt'}: no such checkpoint file (ZOO_DEBUG=1 shows the traceback)"
    ]
