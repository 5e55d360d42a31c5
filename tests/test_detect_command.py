"""``python -m zoo detect``: a PNG with the boxes drawn and a JSON of detections per image, in the
image's own pixels, from a checkpoint alone; bad images, options and checkpoints are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_detection_data import draw
from test_detection_task import fit_tiny_ssd
from test_hostile_inputs import declaring_png

from zoo.cli.detect import detect, main
from zoo.core.checkpoint import load_task
from zoo.run.errors import user_errors_as_one_line
from zoo.tasks import Detection

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    summary = fit_tiny_ssd(tmp_path_factory.mktemp("detect"), "--trainer.max_epochs", "1")
    return json.loads(Path(summary["metrics_file"]).read_text())["best_checkpoint"]


def test_detect_writes_pngs_and_json_in_original_pixels(checkpoint, tmp_path):
    wide = draw(tmp_path / "wide.jpg", (160, 96), [[20, 10, 90, 70]])
    square = draw(tmp_path / "square.png", (64, 64), [[8, 8, 40, 40]])
    results = main(["--ckpt_path", checkpoint, str(wide), str(square), "--out", str(tmp_path / "out"),
                    "--score_threshold", "0"])  # fmt: skip
    saved = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert [r["image"] for r in saved] == [str(wide), str(square)]
    assert (saved[0]["width"], saved[0]["height"]) == (160, 96)
    for r in saved:
        assert r["detections"], "score_threshold 0 keeps every detection the task makes"
        boxes = np.array([d["box"] for d in r["detections"]])
        assert {d["class"] for d in r["detections"]} == {"banana"}
        assert (boxes[:, 2] > boxes[:, 0]).all()
        scores = [d["score"] for d in r["detections"]]
        assert scores == sorted(scores, reverse=True)
    png = Image.open(tmp_path / "out" / "wide.png")
    assert png.size == (160, 96)
    assert not np.array_equal(np.array(png.convert("RGB")), np.array(Image.open(wide).convert("RGB")))  # drawn
    # the boxes are the task's own on the 64-pixel input it was trained at, scaled to the image
    task = load_task(checkpoint, Detection).eval()
    pixels = torch.from_numpy(np.array(Image.open(wide).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(pixels, size=(64, 64), mode="bilinear", antialias=True)
    own = task.detect(x)[0]
    best = own["scores"].argmax()
    expected = own["boxes"][best] * torch.tensor([160 / 64, 96 / 64, 160 / 64, 96 / 64])
    assert saved[0]["detections"][0]["box"] == pytest.approx(expected.tolist(), abs=0.5)
    assert saved[0]["detections"][0]["score"] == pytest.approx(float(own["scores"][best]), abs=2e-3)
    assert detect(task, wide, 0.0)[0].detections == results[0].detections
    high = main(["--ckpt_path", checkpoint, str(wide), "--out", str(tmp_path / "high"), "--score_threshold", "1"])
    assert high[0].detections == [] and (tmp_path / "high" / "wide.png").is_file()


def _one_line(*args: str) -> str:
    """The one line the command's error boundary prints for ``args`` (in this process)."""
    with pytest.raises(SystemExit) as exit_, user_errors_as_one_line():
        main(list(args))
    return str(exit_.value)


def test_bad_input_is_one_line(checkpoint, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really")
    # the real entry point, once: one line on stderr, exit status 1
    run = subprocess.run([sys.executable, "-m", "zoo", "detect", "--ckpt_path", checkpoint, str(broken), "--out",
                          str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 1 and "broken.jpg: not a readable image" in run.stderr and "Traceback" not in run.stderr
    other = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": "zoo.tasks.Classification"}}, other)
    assert "weights.ckpt" in _one_line("--ckpt_path", str(other), str(broken), "--out", str(tmp_path / "o"))
    with pytest.raises(SystemExit) as exit_:  # the parser refuses it, before the checkpoint is read
        main(["--ckpt_path", checkpoint, str(broken), "--out", str(tmp_path / "o"), "--score_threshold", "2"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith("error: argument --score_threshold: expected a number from 0 to 1, got 2"), err
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(declaring_png(20000, 20000))
    message = _one_line("--ckpt_path", checkpoint, str(bomb), "--out", str(tmp_path / "o"))
    assert message.startswith(f"error: {bomb}: declares more than 178,956,970 pixels"), message
    assert _one_line("--ckpt_path", checkpoint, str(tmp_path), "--out", str(tmp_path / "o")).startswith(
        f"error: {tmp_path}: a folder, expected an image file"
    )
    (tmp_path / "file").write_text("")
    assert "is a file; expected a folder" in _one_line(
        "--ckpt_path", checkpoint, str(broken), "--out", str(tmp_path / "file")
    )
