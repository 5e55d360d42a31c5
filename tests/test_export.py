"""``python -m zoo export``: ONNX (run by onnxruntime) and TorchScript files whose outputs equal
the checkpoint's within 1e-4 on a real batch of test images, at batch sizes other than the
traced one; the class names and preprocessing travel in the file."""

from __future__ import annotations

import json

import onnx
import pytest
import torch

from datamodules.augment import from_preprocessing
from datamodules.fashion_mnist import CLASSES, read_idx
from zoo.cli.export import main
from zoo.core.checkpoint import load_task
from zoo.run.export import quiet_torchscript_deprecation, run_exported
from zoo.tasks.classification import Classification


def _real_batch(data, task, n):
    """``n`` test images through the checkpoint's own preprocessing, ``(n, 1, 28, 28)``."""
    transform = from_preprocessing(task.preprocessing)
    images = read_idx(data / "t10k-images-idx3-ubyte.gz")[:n].numpy()
    return torch.stack([transform(image=img)["image"] for img in images])


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_outputs_equal_the_checkpoints(fashion_classifier, tmp_path, fmt):
    ckpt, data, _ = fashion_classifier
    out = tmp_path / ("model.onnx" if fmt == "onnx" else "model.pt")
    assert main(["--ckpt_path", str(ckpt), "--format", fmt, "--out", str(out)]) == out
    task = load_task(ckpt, Classification)
    for n in (1, 37):  # the batch size is dynamic: the model was traced on 2
        x = _real_batch(data, task, n)
        with torch.inference_mode():
            expected = task.model.eval()(x)
        got = run_exported(out, fmt, x)
        assert got.shape == (n, 10)
        assert torch.allclose(got, expected, rtol=0, atol=1e-4), float((got - expected).abs().max())
    assert (got.argmax(1) == expected.argmax(1)).all()
    if fmt == "onnx":  # the deployment file carries what a caller needs to preprocess and name
        meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    else:
        files = {"classes.json": "", "preprocessing.json": ""}
        with quiet_torchscript_deprecation():
            torch.jit.load(str(out), _extra_files=files)
        meta = {k.removesuffix(".json"): v for k, v in files.items()}
    assert json.loads(meta["classes"]) == list(CLASSES)
    assert json.loads(meta["preprocessing"]) == task.preprocessing


def test_an_output_folder_is_refused_before_exporting(fashion_classifier, tmp_path):
    ckpt, _, _ = fashion_classifier
    with pytest.raises(IsADirectoryError, match="is a folder"):
        main(["--ckpt_path", str(ckpt), "--format", "onnx", "--out", str(tmp_path)])
