"""``python -m zoo export``: an image classifier's checkpoint as an ONNX or TorchScript file.

    python -m zoo export --ckpt_path runs/cifar10_cpu/version_0/checkpoints/last.ckpt --format onnx --out cifar10.onnx

The exported graph takes ``images``, a float batch ``(B, C, H, W)`` of any size ``B``, already
preprocessed as the checkpoint's data module did (``zoo predict`` does it for files; the recipe
is in the file's metadata), and returns ``logits`` ``(B, classes)`` (softmax them for
probabilities). ONNX goes through ``torch.onnx.export(dynamo=True)``, PyTorch's maintained
exporter, and needs the ``export`` extra (``pip install -e ".[export]"``); the class names and
preprocessing are kept in its ``metadata_props``. TorchScript (``torch.jit.trace``, which
PyTorch deprecates in favour of ``torch.export``) keeps them as the extra files
``classes.json`` and ``preprocessing.json``. After writing, the file is loaded back (with
onnxruntime for ONNX) and its outputs are compared with the checkpoint's on a batch of 3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.cli.predict import load_classifier
from zoo.core.errors import ConfigError
from zoo.core.io import atomic_write
from zoo.core.options import number
from zoo.run.errors import run_command

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
    task = load_classifier(ckpt_path)
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


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(prog="python -m zoo export", description="Export an image classifier's "
                                "checkpoint as ONNX or TorchScript (dynamic batch size).")  # fmt: skip
    p.add_argument("--ckpt_path", required=True)
    p.add_argument("--format", choices=FORMATS, default="onnx")
    p.add_argument("--out", required=True, help="file to write, e.g. model.onnx or model.pt")
    p.add_argument("--image_size", type=number(int, 1, MAX_IMAGE_SIZE),
                   help=f"input side length, up to {MAX_IMAGE_SIZE} (default: the checkpoint's)")
    p.add_argument("--dry_run", action="store_true", help="load and check the inputs, then stop")
    args = p.parse_args(argv)
    if args.dry_run:
        task = load_classifier(args.ckpt_path)
        return print(f"dry run: {args.ckpt_path} holds a classifier of {len(task.classes)} classes; "
                     f"would write {args.out} ({args.format})")  # fmt: skip
    path, diff = export(args.ckpt_path, args.format, args.out, args.image_size)
    print(f"wrote {path} ({args.format}); largest difference from the checkpoint's logits: {diff:.2e}", file=sys.stderr)
    return path


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo export``)."""
    run_command(lambda: main(argv))


if __name__ == "__main__":
    run()
