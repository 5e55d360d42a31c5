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
import sys
from pathlib import Path

from zoo.core.checkpoint import load_task
from zoo.core.options import number
from zoo.run.errors import run_command
from zoo.run.export import FORMATS, MAX_IMAGE_SIZE, export
from zoo.tasks.classification import Classification


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
        task = load_task(args.ckpt_path, Classification)
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
