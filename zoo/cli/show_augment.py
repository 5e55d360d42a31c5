"""``python -m zoo show_augment``: a PNG grid of augmented training samples, as the course shows
them (lecture 36): one row per image, each column another draw of its augmentation.

    python -m zoo show_augment --config configs/resnet18_cifar10.yaml \\
        --data_dir ../shared/data/cifar10 --out augment.png [--images 6] [--draws 8]
    python -m zoo show_augment --config configs/cifar10_cpu.yaml --augment course --out course.png

Works with any image data module of a ``zoo.fit`` recipe (only its ``data`` section is used)
whose training set yields ``(C, H, W)`` tensors; a detection data module's boxes are drawn
where the augmentation moved them (``--augment ssd`` of ``configs/tiny_ssd_banana.yaml``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import make_grid, save_image

from datamodules.base import ZooDataModule
from zoo.core.classes import from_section
from zoo.core.io import atomic_write, read_yaml
from zoo.core.options import number
from zoo.run.errors import run_command


def data_module(config: str | Path, overrides: dict[str, Any]) -> ZooDataModule:
    """The data module of a recipe, with ``overrides`` on its ``init_args``: a ``ZooDataModule``,
    as ``zoo.fit`` requires (``zoo.core.classes``), never any other class the file names."""
    return from_section(read_yaml(config), "data", ZooDataModule, config, overrides)


def to_display(x: torch.Tensor, mean: Any, std: Any) -> torch.Tensor:
    """Undo normalisation for display: with known stats exactly, else per-image min-max."""
    if mean is not None and std is not None:
        x = x * torch.as_tensor(std).view(-1, 1, 1) + torch.as_tensor(mean).view(-1, 1, 1)
    elif x.min() < 0 or x.max() > 1:
        x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-8)
    return x.clamp(0, 1)


def tile(sample: Any, mean: Any, std: Any) -> torch.Tensor:
    """One sample for display; a detection sample's boxes (``(image, {"boxes": ...})``) drawn on it."""
    x = to_display(sample[0], mean, std)
    target = sample[1] if len(sample) > 1 else None
    if isinstance(target, dict) and "boxes" in target and len(target["boxes"]):
        from torchvision.utils import draw_bounding_boxes

        image = (x * 255).round().to(torch.uint8)
        x = draw_bounding_boxes(image, target["boxes"], colors="yellow", width=2).float() / 255
    return x


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="a zoo.fit recipe (YAML) with a data section")
    p.add_argument("--out", default="runs/show_augment/augment.png", help="PNG file to write")
    p.add_argument("--data_dir", help="override the recipe's data_dir")
    p.add_argument("--augment", help="override the recipe's augmentation pipeline")
    p.add_argument("--images", type=number(int, 1, 64), default=6, help="rows: different training images (1-64)")
    p.add_argument("--draws", type=number(int, 1, 64), default=8, help="columns: augmentations of each image (1-64)")
    p.add_argument("--dry_run", action="store_true", help="load and check the inputs, then stop")
    args = p.parse_args(argv)
    overrides = {k: v for k, v in (("data_dir", args.data_dir), ("augment", args.augment)) if v}
    dm = data_module(args.config, overrides)
    dm.setup("fit")
    dataset = dm.train_dataloader().dataset
    if args.dry_run:
        return print(f"dry run: {len(dataset)} training images; would write {args.out}")
    mean, std = getattr(dm, "mean", None), getattr(dm, "std", None)
    tiles = [tile(dataset[i], mean, std) for i in range(min(args.images, len(dataset))) for _ in range(args.draws)]
    grid = make_grid(torch.stack(tiles), nrow=args.draws, padding=2, pad_value=1.0)
    out = Path(args.out)
    with atomic_write(out, "wb") as f:
        save_image(grid, f, format="png")
    print(f"wrote {out} ({len(tiles)} samples)")
    return out


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo show_augment``)."""
    run_command(lambda: main(argv))


if __name__ == "__main__":
    run()
