"""Write a generated segmentation set in Pascal VOC2012's layout: shapes on textured backgrounds.

    python -m scripts.make_shapes_segmentation --out data/shapes [--train 800 --val 200 --seed 0]

Each image (JPEG, sizes drawn between ``--min_size`` and ``--max_size``) has a textured
background (smooth noise, stripes at a random angle, random colours) and one to three shapes of
four classes (circle, square, triangle, cross), each with a random colour and size and its own
noise, so the class is told by the shape, not the colour. Later shapes may cover earlier ones.
The masks are palette PNGs with VOC's palette whose index is the class (0 background) and, as
in VOC, a band of 255 (ignored) along every shape's outline. Written:
``<out>/VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation/{train,val}.txt}``
and ``<out>/classes.txt``; ``datamodules.VOCSegmentation`` reads it (``configs/fcn_shapes.yaml``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from datamodules.voc import IGNORE_INDEX, VOC_ROOT, write_mask
from scripts.options import add_dry_run, dry_run_done
from zoo.run.errors import run_command

CLASSES = ("background", "circle", "square", "triangle", "cross")


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """``(h, w, 3)`` float background: two random colours mixed by smooth noise and stripes."""
    noise = cv2.resize(rng.random((max(2, h // 16), max(2, w // 16))), (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w]
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 30)
    stripes = 0.5 + 0.5 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    t = np.clip(0.6 * noise + 0.4 * stripes * rng.uniform(0.2, 1.0), 0, 1)[..., None]
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return a * (1 - t) + b * t


def shape_mask(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """A filled ``kind`` at a random place, size and rotation, as an ``(h, w)`` bool mask."""
    m = np.zeros((h, w), np.uint8)
    r = int(rng.uniform(0.25, 0.45) * min(h, w))
    cy, cx = int(rng.uniform(r, h - r)), int(rng.uniform(r, w - r))
    angle = rng.uniform(0, 2 * np.pi)
    if kind == "circle":
        cv2.circle(m, (cx, cy), r, 1, -1)
        return m.astype(bool)
    if kind == "square":
        corners = [angle + k * np.pi / 2 for k in range(4)]
        pts = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in corners]
    elif kind == "triangle":
        pts = [
            (cx + r * np.cos(angle + k * 2 * np.pi / 3), cy + r * np.sin(angle + k * 2 * np.pi / 3)) for k in range(3)
        ]
    else:  # a plus sign: two bars of a third of its width
        t = r / 3
        base = [
            (-t, -r),
            (t, -r),
            (t, -t),
            (r, -t),
            (r, t),
            (t, t),
            (t, r),
            (-t, r),
            (-t, t),
            (-r, t),
            (-r, -t),
            (-t, -t),
        ]
        c, s = np.cos(angle), np.sin(angle)
        pts = [(cx + x * c - y * s, cy + x * s + y * c) for x, y in base]
    cv2.fillPoly(m, [np.round(np.array(pts)).astype(np.int32)], 1)
    return m.astype(bool)


def sample(rng: np.random.Generator, min_size: tuple[int, int], max_size: tuple[int, int]):
    """One ``(image (H, W, 3) uint8, mask (H, W) uint8)`` pair."""
    h, w = int(rng.integers(min_size[0], max_size[0] + 1)), int(rng.integers(min_size[1], max_size[1] + 1))
    image = texture(rng, h, w)
    mask = np.zeros((h, w), np.uint8)
    outline = np.zeros((h, w), bool)
    kernel = np.ones((3, 3), np.uint8)  # a band about 3 pixels wide (VOC's is about 5)
    for _ in range(int(rng.integers(1, 4))):
        label = int(rng.integers(1, len(CLASSES)))
        m = shape_mask(rng, CLASSES[label], h, w)
        colour = rng.uniform(0, 255, 3)
        shade = cv2.resize(rng.random((4, 4)), (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
        image[m] = (colour * (0.7 + 0.3 * shade) + rng.normal(0, 8, (h, w, 3)))[m]
        mask[m] = label
        outline &= ~m  # a shape on top covers the outline of those below
        m8 = m.astype(np.uint8)
        outline |= cv2.dilate(m8, kernel).astype(bool) & ~cv2.erode(m8, kernel).astype(bool)
    mask[outline] = IGNORE_INDEX  # VOC marks object boundaries 255
    return np.clip(image, 0, 255).astype(np.uint8), mask


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder to write VOCdevkit/VOC2012 into")
    p.add_argument("--train", type=int, default=800)
    p.add_argument("--val", type=int, default=200)
    p.add_argument("--min_size", type=int, nargs=2, default=(120, 152), metavar=("H", "W"))
    p.add_argument("--max_size", type=int, nargs=2, default=(192, 240), metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    add_dry_run(p)
    args = p.parse_args(argv)
    if args.dry_run:
        return dry_run_done(f"would write {args.train} + {args.val} images into {args.out}")
    root = Path(args.out) / VOC_ROOT
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for split, n in (("train", args.train), ("val", args.val)):
        ids = [f"{split}_{i:05d}" for i in range(n)]
        for name in ids:
            image, mask = sample(rng, tuple(args.min_size), tuple(args.max_size))
            Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg", quality=92)
            write_mask(root / "SegmentationClass" / f"{name}.png", mask)
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    (Path(args.out) / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    print(f"wrote {args.train} training and {args.val} validation images to {root}")
    return root


if __name__ == "__main__":
    run_command(main)
