"""``python -m zoo segment``: segment images with a trained segmentation checkpoint.

    python -m zoo segment --ckpt_path runs/fcn_voc/version_0/checkpoints/last.ckpt \\
        street.jpg cat.png [--out runs/segment/]

Per image, two PNGs in ``--out``: ``<name>_mask.png``, the predicted classes as a palette PNG
in VOC's colours (its pixel values are the class indices, as in VOC's ``SegmentationClass``),
and ``<name>_overlay.png``, the colours blended over the image. Images are normalised as the
checkpoint's data module normalised its training images, and segmented whole, at their size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datamodules.voc import IMAGENET_MEAN, IMAGENET_STD, voc_palette
from zoo.core.checkpoint import load_checkpoint, load_task
from zoo.core.errors import ConfigError
from zoo.core.images import read_rgb
from zoo.core.io import atomic_write
from zoo.core.options import number
from zoo.run.errors import run_command
from zoo.tasks.segmentation import Segmentation


def normalisation(ckpt: dict) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """The ``mean``/``std`` the checkpoint's data module was built with, read from its saved
    arguments (None: images scaled to [0, 1]); ImageNet's when it saved none."""
    saved = ckpt.get("datamodule_hyper_parameters") or {}
    return saved.get("mean", IMAGENET_MEAN), saved.get("std", IMAGENET_STD)


@torch.no_grad()
def segment(task: Segmentation, image: np.ndarray, mean, std) -> np.ndarray:
    """``(H, W)`` uint8 class indices for an ``(H, W, 3)`` uint8 RGB image."""
    x = torch.from_numpy(image).float().div(255).permute(2, 0, 1)  # (3, H, W)
    if mean is not None:
        x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    device = next(task.parameters()).device
    logits = task.model(x[None].to(device))  # (1, C, H, W)
    return logits[0].argmax(0).to(torch.uint8).cpu().numpy()


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The mask's VOC colours blended over the image (background left as it is)."""
    colours = np.array(voc_palette(), dtype=np.float32).reshape(256, 3)[mask]  # (H, W, 3)
    blend = np.where(mask[..., None] > 0, (1 - alpha) * image + alpha * colours, image)
    return blend.round().astype(np.uint8)


def _save(path: Path, im: Image.Image) -> Path:
    with atomic_write(path, "wb") as f:
        im.save(f, format="PNG")
    return path


def main(argv: list[str] | None = None) -> list[tuple[Path, Path]]:
    p = argparse.ArgumentParser(description="Segment images with a trained segmentation checkpoint.")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--ckpt_path", required=True)
    p.add_argument("--out", default="runs/segment", help="folder for <name>_mask.png and <name>_overlay.png")
    p.add_argument("--alpha", type=number(float, 0, 1), default=0.5, help="opacity of the colours in the overlay (0-1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dry_run", action="store_true", help="load and check the inputs, then stop")
    args = p.parse_args(argv)
    stems = [Path(i).stem for i in args.images]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise ConfigError(f"several images are named {', '.join(twice)}: their outputs would overwrite each other")
    ckpt = load_checkpoint(args.ckpt_path, require=("state_dict", "hyper_parameters"))  # read once
    task = load_task(args.ckpt_path, Segmentation, checkpoint=ckpt).to(args.device).eval()
    mean, std = normalisation(ckpt)
    if args.dry_run:
        for path in args.images:
            read_rgb(path)  # names a missing or unreadable image
        return print(f"dry run: {args.ckpt_path} holds a segmentation model; {len(args.images)} images")
    out, written = Path(args.out), []
    for path, stem in zip(args.images, stems, strict=True):
        image = read_rgb(path)
        mask = segment(task, image, mean, std)
        im = Image.fromarray(mask, mode="P")
        im.putpalette(voc_palette())
        blend = Image.fromarray(overlay(image, mask, args.alpha))
        pair = _save(out / f"{stem}_mask.png", im), _save(out / f"{stem}_overlay.png", blend)
        classes = ", ".join(task.class_labels.get(int(c), str(c)) for c in np.unique(mask))
        print(f"{path}: {classes} -> {pair[0]}, {pair[1]}")
        written.append(pair)
    return written


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo segment``)."""
    run_command(lambda: main(argv))


if __name__ == "__main__":
    run()
