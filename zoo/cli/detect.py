"""``python -m zoo detect``: detect objects in images with a trained detection checkpoint.

    python -m zoo detect --ckpt_path runs/tiny_ssd_banana/version_0/checkpoints/last.ckpt \\
        photo1.jpg photo2.png --out detections/ [--score_threshold 0.5] [--device cpu]

Writes, per image, ``<out>/<stem>.png``: the image with its boxes, class names and scores drawn
(``torchvision.utils.draw_bounding_boxes``), and ``<out>/detections.json``: for every image its
file, size and a list of ``{"label", "class", "score", "box": [x_min, y_min, x_max, y_max]}`` in
the image's own pixels, best first. Images are resized as in training (the checkpoint records
the size); class names come from the checkpoint.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from zoo.core.checkpoint import load_task
from zoo.core.errors import ConfigError
from zoo.core.images import read_rgb
from zoo.core.io import atomic_write, write_json
from zoo.core.options import number
from zoo.run.errors import run_command
from zoo.tasks.detection import Detection


@dataclass
class ImageDetections:
    image: str
    width: int
    height: int
    detections: list[dict] = field(default_factory=list)


@torch.no_grad()
def detect(task: Detection, path: str | Path, score_threshold: float = 0.5) -> tuple[ImageDetections, torch.Tensor]:
    """The detections of one image at or above ``score_threshold``, and the image (uint8 CHW)."""
    from torchvision.transforms.v2 import functional as TF

    image = torch.from_numpy(read_rgb(path)).permute(2, 0, 1)  # (3, H, W) uint8; names a bad file
    h, w = image.shape[-2:]
    size = task.image_size
    x = TF.resize(image, [size, size], antialias=True) if size else image
    device = next(task.parameters()).device
    det = task.predict_step((x[None].float().div(255).to(device), [{"size": torch.tensor([h, w])}]), 0)[0]
    keep = det["scores"] >= score_threshold
    rows = [{"label": int(lab), "class": task.classes[int(lab)], "score": round(float(s), 4),
             "box": [round(float(v), 2) for v in box]}
            for box, s, lab in zip(det["boxes"][keep].cpu(), det["scores"][keep], det["labels"][keep])]  # fmt: skip
    return ImageDetections(str(path), int(w), int(h), rows), image


def draw(image: torch.Tensor, found: ImageDetections) -> torch.Tensor:
    from torchvision.utils import draw_bounding_boxes

    if not found.detections:
        return image
    boxes = torch.tensor([d["box"] for d in found.detections])
    labels = [f"{d['class']} {d['score']:.2f}" for d in found.detections]
    width = max(1, round(max(found.width, found.height) / 200))
    return draw_bounding_boxes(image, boxes, labels, colors="yellow", width=width)


def main(argv: list[str] | None = None) -> list[ImageDetections]:
    p = argparse.ArgumentParser(description="Detect objects in images with a trained detection checkpoint.")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--ckpt_path", required=True, help="a zoo.fit checkpoint of zoo.tasks.Detection")
    p.add_argument("--out", required=True, help="folder for the drawn PNGs and detections.json")
    p.add_argument("--score_threshold", type=number(float, 0, 1), default=0.5,
                   help="keep detections scored at least this (0 to 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dry_run", action="store_true", help="load and check the inputs, then stop")
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out}: is a file; expected a folder")
    stems = [Path(i).stem for i in args.images]
    if len(set(stems)) != len(stems):
        raise ConfigError("two images share a file name; their PNGs would overwrite each other")
    from torchvision.io import encode_png

    task = load_task(args.ckpt_path, Detection, needs=("classes",)).to(args.device).eval()
    if args.dry_run:
        for path in args.images:
            read_rgb(path)  # names a missing or unreadable image
        return print(f"dry run: {args.ckpt_path} holds a detector; {len(args.images)} images")
    results = []
    for path in args.images:
        found, image = detect(task, path, args.score_threshold)
        with atomic_write(out / f"{Path(path).stem}.png", "wb") as f:
            f.write(encode_png(draw(image, found)).numpy().tobytes())
        results.append(found)
        best = ", ".join(f"{d['class']} {d['score']:.2f}" for d in found.detections[:5]) or "nothing"
        print(f"{path}: {len(found.detections)} detections ({best})")
    write_json(out / "detections.json", [asdict(r) for r in results])
    print(f"wrote {len(results)} PNGs and {out / 'detections.json'}")
    return results


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo detect``)."""
    run_command(lambda: main(argv))


if __name__ == "__main__":
    run()
