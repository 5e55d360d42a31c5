"""A trained image classifier as an ONNX or TorchScript file, checked against its checkpoint:
what ``python -m zoo export`` and ``scripts/export_bench.py`` run. The graph takes ``images``
``(B, C, H, W)`` (any ``B``), preprocessed as the checkpoint's data module did, and returns
``logits``; the class names and preprocessing travel in the file (ONNX ``metadata_props``,
TorchScript extra files)."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.core.checkpoint import load_task
from zoo.core.errors import ConfigError
from zoo.core.io import atomic_write
from zoo.tasks.classification import Classification

FORMATS = ("onnx", "torchscript")
#: the largest --image_size (a 4096x4096 example batch is already 0.4 GB of floats)
MAX_IMAGE_SIZE = 4096


def example_input(preprocessing: dict[str, Any], batch: int = 2, image_size: int | None = None) -> torch.Tensor:
    """A random batch of the shape the model takes, ``(batch, C, H, W)``."""
    size = preprocessing.get("image_size") if image_size is None else image_size
    if not size:
        raise ConfigError("the checkpoint records no image size; pass --image_size")
    return torch.rand(batch, preprocessing.get("in_channels", 3), size, size)


def export_onnx(model: nn.Module, x: torch.Tensor, out: str | Path, metadata: dict[str, str]) -> Path:
    try:
        import onnx  # noqa: F401  (torch.onnx needs onnx and onnxscript)
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"--format onnx needs the export extra: pip install -e '.[export]' ({e})") from None
    program = torch.onnx.export(model, (x,), dynamo=True, input_names=["images"], output_names=["logits"],
                                dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)  # fmt: skip
    proto = program.model_proto
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    with atomic_write(out, "wb") as f:
        f.write(proto.SerializeToString())
    return Path(out)


@contextlib.contextmanager
def quiet_torchscript_deprecation() -> Iterator[None]:
    """torch warns that TorchScript is deprecated at every trace, save and load; the module
    docstring and docs/using_models.md say it once."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        yield


def export_torchscript(model: nn.Module, x: torch.Tensor, out: str | Path, metadata: dict[str, str]) -> Path:
    with quiet_torchscript_deprecation():
        traced = torch.jit.trace(model, (x,))
        with atomic_write(out, "wb") as f:
            torch.jit.save(traced, f, _extra_files={f"{k}.json": v for k, v in metadata.items()})
    return Path(out)


def run_exported(path: str | Path, fmt: str, x: torch.Tensor) -> torch.Tensor:
    """The exported file's logits for ``x``: onnxruntime for ONNX, ``torch.jit.load`` for TorchScript
    (a file this command wrote: TorchScript runs its own graph, so load only files you trust)."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(["logits"], {"images": x.numpy()})[0])
    with torch.inference_mode(), quiet_torchscript_deprecation():
        return torch.jit.load(str(path), map_location="cpu")(x)


def export(ckpt_path: str | Path, fmt: str, out: str | Path, image_size: int | None = None) -> tuple[Path, float]:
    """Write the checkpoint's model as ``fmt`` to ``out``; returns the path and the largest
    difference from the checkpoint's logits on a random batch of 3 (a batch size other than
    the traced one, so the batch dimension is checked to be dynamic)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if Path(out).is_dir():
        raise IsADirectoryError(f"--out {out}: is a folder; expected a file name")
    task = load_task(ckpt_path, Classification)
    model = task.model.eval()
    metadata = {"classes": json.dumps(task.classes), "preprocessing": json.dumps(task.preprocessing),
                "arch": str(task.hparams.arch), "source_checkpoint": str(ckpt_path)}  # fmt: skip
    x = example_input(task.preprocessing, 2, image_size)
    try:
        with torch.inference_mode():
            model(x)
    except RuntimeError as e:  # a kernel or pooling window larger than what is left of the input
        trained = task.preprocessing.get("image_size")
        raise ConfigError(f"--image_size {x.shape[-1]}: too small for {task.hparams.arch} (trained at {trained}): "
                          f"{' '.join(str(e).split())[:200]}") from None  # fmt: skip
    path = (export_onnx if fmt == "onnx" else export_torchscript)(model, x, out, metadata)
    check = example_input(task.preprocessing, 3, image_size)
    with torch.inference_mode():
        expected = model(check)
    return path, float((run_exported(path, fmt, check) - expected).abs().max())
