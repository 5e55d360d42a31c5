"""``python -m zoo predict``: classify your own image files with a trained image classifier.

    python -m zoo predict --ckpt_path runs/lenet_fashion_mnist/version_0/checkpoints/best-009.ckpt \\
        shirt.png photos/ "more/*.jpg" --out predictions.csv [--top_k 3 --batch_size 64 --skip_bad]

Inputs are image files, folders (every image below them, sorted) or glob patterns. The class
names and the evaluation preprocessing (size, grey or RGB, normalisation) come from the
checkpoint, which ``zoo.tasks.Classification`` writes them into, so no data set is needed. The
CSV has one row per image: ``path``, the predicted ``class``, its ``probability``, then the
next most likely classes and their probabilities (``class_2``, ``probability_2``, ...). Without
``--out`` it is printed. An image that does not decode stops the command with its name, unless
``--skip_bad`` (then it is named on stderr and left out). Checkpoints of the other tasks have
their own commands (``zoo generate``, ``zoo translate``, ``zoo detect``, ``zoo segment``); given
one, this command names it.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch

from datamodules.augment import from_preprocessing
from datamodules.image_folder import IMAGE_SUFFIXES
from zoo.core.checkpoint import CheckpointError, load_checkpoint, load_task
from zoo.core.errors import ConfigError
from zoo.core.images import read_rgb
from zoo.core.io import atomic_write
from zoo.core.options import number
from zoo.core.problems import DataError
from zoo.run.errors import run_command
from zoo.tasks.classification import Classification

#: a word of a task's class name -> the command that predicts with it
OTHER_COMMANDS = {"languagemodel": "generate", "seq2seq": "translate", "detection": "detect",
                  "segmentation": "segment", "nli": "nli", "word2vec": "similar", "regression": "forecast"}


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """The image files that ``inputs`` name (files, folders searched recursively, globs), in
    order, each once; an input that names nothing is an error."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            found = [path]
        elif glob.has_magic(item):
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
        if not found:
            raise FileNotFoundError(f"{item}: no image files ({', '.join(IMAGE_SUFFIXES)}) there")
        files += found
    return list(dict.fromkeys(files))


def load_classifier(ckpt_path: str | Path) -> Classification:
    """The classification task of a checkpoint, with its class names and preprocessing; another
    task's checkpoint is refused with the command that predicts with it."""
    ckpt = load_checkpoint(ckpt_path, require=("state_dict", "hyper_parameters"))  # read once
    name = str(ckpt["hyper_parameters"].get("_class_path", "")).rsplit(".", 1)[-1]
    if name and name != "Classification":
        command = next((c for word, c in OTHER_COMMANDS.items() if word in name.lower()), None)
        hint = (f"predict with python -m zoo {command} --ckpt_path {ckpt_path}" if command
                else "zoo predict classifies images")  # fmt: skip
        raise CheckpointError(f"{ckpt_path}: holds a {name} model, not an image classifier; {hint}")
    return load_task(ckpt_path, Classification, checkpoint=ckpt)


def read_image(path: Path, channels: int) -> np.ndarray:
    """``(H, W, 3)`` RGB, or ``(H, W)`` grey for a one-channel model, uint8."""
    rgb = read_rgb(path)  # a grey file comes back with three equal channels
    return rgb if channels == 3 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


@torch.inference_mode()
def predict(
    task: Classification,
    files: Sequence[Path],
    batch_size: int = 64,
    top_k: int = 3,
    skip_bad: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[list[dict[str, object]], list[str]]:
    """One row per readable image (path, class, probability, the next ``top_k - 1``), and
    ``path (reason)`` of every image skipped (only with ``skip_bad``; else the first bad one raises)."""
    from rich.console import Console
    from rich.progress import Progress

    prep = task.preprocessing
    transform, channels = from_preprocessing(prep), prep.get("in_channels", 3)
    model = task.model.to(device).eval()
    k = max(1, min(top_k, len(task.classes)))
    rows, skipped = [], []

    def load(path: Path) -> torch.Tensor | str:
        try:
            return transform(image=read_image(path, channels))["image"]
        except DataError as e:  # read_rgb's: missing, too large, damaged
            reason = "; ".join(e.problems)
            if not skip_bad:
                raise DataError(str(path), [f"{reason} (--skip_bad leaves unreadable images out)"]) from None
            return f"{path} ({reason})"

    # cv2 decodes and resizes without the GIL: threads keep the model fed
    with (
        ThreadPoolExecutor(max_workers=4) as pool,
        Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar,
    ):
        job = bar.add_task("predicting", total=len(files))
        for start in range(0, len(files), batch_size):
            batch = files[start : start + batch_size]
            loaded = list(pool.map(load, batch))
            skipped += [x for x in loaded if isinstance(x, str)]
            kept = [(p, x) for p, x in zip(batch, loaded) if not isinstance(x, str)]
            if kept:
                x = torch.stack([x for _, x in kept]).to(device)  # (B, C, H, W)
                prob, idx = model(x).float().softmax(-1).topk(k, dim=-1)  # (B, k) each
                for (path, _), p, i in zip(kept, prob.tolist(), idx.tolist()):
                    row: dict[str, object] = {"path": str(path), "class": task.classes[i[0]], "probability": p[0]}
                    for r in range(1, k):
                        row[f"class_{r + 1}"], row[f"probability_{r + 1}"] = task.classes[i[r]], p[r]
                    rows.append(row)
            bar.advance(job, len(batch))
    return rows, skipped


def to_csv(rows: Sequence[dict[str, object]], top_k: int) -> str:
    out = io.StringIO(newline="")
    header = ["path", "class", "probability"] + [f"{c}_{r}" for r in range(2, top_k + 1)
                                                for c in ("class", "probability")]  # fmt: skip
    writer = csv.DictWriter(out, fieldnames=header[: len(rows[0]) if rows else len(header)], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})
    return out.getvalue()


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    p = argparse.ArgumentParser(prog="python -m zoo predict", description="Classify image files with a "
                                "trained image classifier; writes a CSV.")  # fmt: skip
    p.add_argument("--ckpt_path", required=True, help="a zoo.fit checkpoint of zoo.tasks.Classification")
    p.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) or glob patterns")
    p.add_argument("--out", help="CSV file to write (default: print it)")
    p.add_argument("--top_k", type=number(int, 1), default=3,
                   help="classes per image, most likely first (default 3; capped at the classes)")
    p.add_argument("--batch_size", type=number(int, 1, 4096), default=64)
    p.add_argument("--skip_bad", action="store_true", help="leave unreadable images out (named on stderr)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--dry_run", action="store_true", help="load and check the inputs, then stop")
    args = p.parse_args(argv)
    if args.top_k < 1 or args.batch_size < 1:
        raise ConfigError(f"--top_k and --batch_size must be >= 1, got {args.top_k} and {args.batch_size}")
    if args.out and Path(args.out).is_dir():
        raise IsADirectoryError(f"--out {args.out}: is a folder; expected a CSV file name")
    task = load_classifier(args.ckpt_path)
    files = expand_inputs(args.inputs)
    if args.dry_run:
        return print(f"dry run: {args.ckpt_path} holds a classifier of {len(task.classes)} classes; "
                     f"{len(files)} images")  # fmt: skip
    rows, skipped = predict(task, files, args.batch_size, args.top_k, args.skip_bad, args.device,
                            progress=not args.no_progress and sys.stderr.isatty())  # fmt: skip
    for item in skipped:
        print(f"skipped: {item}", file=sys.stderr)
    text = to_csv(rows, min(args.top_k, len(task.classes)))
    if args.out:
        with atomic_write(args.out, newline="") as f:
            f.write(text)
        print(f"wrote {len(rows)} predictions to {args.out}" + (f" ({len(skipped)} skipped)" if skipped else ""),
              file=sys.stderr)  # fmt: skip
    else:
        sys.stdout.write(text)
    return rows


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo predict``)."""
    run_command(lambda: main(argv))


if __name__ == "__main__":
    run()
