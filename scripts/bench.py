"""The benchmark suite: one command, a table on stdout and the numbers as JSON.

(a) Lightning overhead: training images/s of the zoo's ``Classification`` task under a
    Lightning ``Trainer`` against a hand-written loop (forward, cross-entropy, backward, step) on
    the same model and batches, for LeNet (28x28) and ResNet-18 (96x96, the course's size for
    Fashion-MNIST), in the same run (``scripts.throughput`` times each side).
(b) Data pipeline: images/s through a DataLoader over a folder of JPEGs (decode, random resized
    crop to 224, flip, colour jitter, normalise: the Kaggle dog-breed recipe of lecture 40), with
    albumentations (``datamodules.augment`` on ``ImageFiles``, OpenCV decoding) against
    ``torchvision.transforms.v2`` (``torchvision.io`` decoding), at ``num_workers`` 0 and 2.
    By default the folder is made once from the CIFAR-10 JPEGs in ``../shared/data``, scaled
    to 256x256 so that decoding costs what a Leaves/Dogs photo costs.
(c) Time to accuracy: wall seconds from the start of ``zoo.fit`` on the fast Fashion-MNIST
    recipe until the validation accuracy first reaches ``--target``, and the final test accuracy.

Every figure is the median over ``--repeats`` (``--tta_repeats`` for (c)); the spread
(min-max) is printed beside it. ``--quick`` is a smoke run with fewer steps, images and epochs.

    python -m scripts.bench [--quick] [--parts overhead data tta] [--out runs/bench/bench.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from scripts.options import add_dry_run, dry_run_done, require
from zoo.core.io import write_json
from zoo.run.errors import run_command

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, as the course's Kaggle recipes
# model -> (input side, timed steps): LeNet's steps take milliseconds, so it needs many of them
# for a scheduler hiccup not to decide the figure
OVERHEAD_MODELS = {"lenet": (28, 100), "resnet18": (96, 5)}


# -- machine --------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = platform.processor()
    with open("/proc/cpuinfo") if Path("/proc/cpuinfo").is_file() else open(os.devnull) as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    import albumentations
    import torchvision

    return {
        "cpu": cpu,
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": L.__version__,
        "albumentations": albumentations.__version__,
        "platform": platform.platform(),
    }


def stats(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


# -- (a) Lightning overhead -----------------------------------------------------------------
def overhead(args: argparse.Namespace) -> dict[str, Any]:
    from scripts.throughput import lightning_rate, loop_rate
    from zoo.models.registry import list_models

    out = {}
    for name, (size, steps) in OVERHEAD_MODELS.items():
        arch = name if list_models(name) else f"timm/{name}"  # before the zoo had its own resnet18
        steps = max(1, round(steps * args.step_scale))
        t_args = argparse.Namespace(batch_size=args.batch_size, warmup=args.warmup, steps=steps)
        pl, loop = [], []
        for _ in range(args.repeats):
            pl.append(lightning_rate(arch, size, t_args))
            loop.append(loop_rate(arch, size, t_args))
        ratio = [a / b for a, b in zip(pl, loop, strict=True)]
        out[name] = {"arch": arch, "input": size, "steps": steps, "lightning_img_s": stats(pl),
                     "loop_img_s": stats(loop),
                     "lightning_over_loop": stats(ratio)}  # fmt: skip
    return out


# -- (b) data pipeline ------------------------------------------------------------------------
def jpeg_folder(n: int, side: int = 256) -> Path:
    """``n`` JPEGs of ``side`` pixels, made once from the CIFAR-10 training JPEGs (random
    pictures where those are missing) in a cache folder that later runs reuse."""
    import cv2

    folder = Path(tempfile.gettempdir()) / f"zoo-bench-jpegs-{side}"
    have = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if len(have) >= n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    source = sorted((SHARED / "cifar10" / "train").glob("*.jpg"))[:n]
    rng = np.random.default_rng(0)
    for i in range(n):
        img = cv2.imread(str(source[i])) if i < len(source) else rng.integers(0, 256, (32, 32, 3), np.uint8)
        big = cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"{i}.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


class TorchvisionJPEGs(Dataset):
    """The same recipe with ``torchvision.io`` decoding and ``transforms.v2``."""

    def __init__(self, files: list[Path], size: int) -> None:
        from torchvision.transforms import v2

        self.files = files
        self.transform = v2.Compose([
            v2.RandomResizedCrop(size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ])  # fmt: skip

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from torchvision.io import ImageReadMode, decode_image

        return self.transform(decode_image(str(self.files[i]), mode=ImageReadMode.RGB)), 0


def pipelines(files: list[Path], size: int) -> dict[str, Dataset]:
    from datamodules.augment import build
    from datamodules.image_folder import ImageFiles

    return {
        "albumentations": ImageFiles(files, [0] * len(files), build("crop_flip_jitter", size, MEAN, STD, seed=0)),
        "torchvision.v2": TorchvisionJPEGs(files, size),
    }


def images_per_second(dataset: Dataset, workers: int, batch_size: int) -> float:
    """One pass over ``dataset``, worker start-up included (as every epoch pays it)."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    start = time.perf_counter()
    n = sum(len(x) for x, _ in loader)
    return n / (time.perf_counter() - start)


def data(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.jpeg_dir) if args.jpeg_dir else jpeg_folder(args.images)
    files = sorted(folder.glob("*.jpg"))[: args.images]
    out: dict[str, Any] = {"folder": str(folder), "images": len(files), "crop": args.crop}
    for name, dataset in pipelines(files, args.crop).items():
        for workers in (0, 2):
            runs = [images_per_second(dataset, workers, args.batch_size) for _ in range(args.repeats)]
            out[f"{name}@{workers}"] = stats(runs)
    return out


# -- (c) time to accuracy -------------------------------------------------------------------
class AccuracyClock(L.Callback):
    """Records ``(epoch, perf_counter, val/acc)`` after every validation of the fit."""

    runs: ClassVar[list[list[tuple[int, float, float]]]] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        AccuracyClock.runs.append([])

    def on_validation_end(self, trainer, pl_module) -> None:
        acc = trainer.callback_metrics.get("val/acc")
        if not trainer.sanity_checking and acc is not None:
            AccuracyClock.runs[-1].append((trainer.current_epoch, time.perf_counter(), float(acc)))


def time_to_accuracy(args: argparse.Namespace) -> dict[str, Any]:
    from zoo.cli.fit import main
    from zoo.run.folder import VERSION_ENV

    recipe = ROOT / "configs" / "fashion_mnist_fast.yaml"
    recipe = recipe if recipe.is_file() else ROOT / "configs" / "lenet_fashion_mnist.yaml"
    seconds, test_acc, walls, reached_epoch = [], [], [], []
    for i in range(args.tta_repeats):
        os.environ.pop(VERSION_ENV, None)
        with tempfile.TemporaryDirectory() as root:
            extra = ["--trainer.max_epochs", str(args.tta_epochs)] if args.tta_epochs else []
            extra += ["--trainer.limit_train_batches", "0.1"] if args.quick else []
            t0 = time.perf_counter()
            summary = main(["--config", str(recipe), "--data.init_args.data_dir", args.fashion_dir,
                            "--trainer.default_root_dir", root, "--name", f"tta{i}",
                            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                            f"--trainer.callbacks+={AccuracyClock.__module__}.AccuracyClock", *extra])  # fmt: skip
            walls.append(time.perf_counter() - t0)
        hit = next(((e, t) for e, t, acc in AccuracyClock.runs[-1] if acc >= args.target), None)
        seconds.append(hit[1] - t0 if hit else float("nan"))
        reached_epoch.append(hit[0] + 1 if hit else None)
        test_acc.append(summary["test"].get("test/acc", float("nan")))
    return {"recipe": str(recipe.relative_to(ROOT)), "target_val_acc": args.target,
            "seconds_to_target": stats(seconds), "epochs_to_target": reached_epoch,
            "test_acc": stats(test_acc), "wall_seconds": stats(walls)}  # fmt: skip


# -- table ----------------------------------------------------------------------------------
def _fmt(s: dict[str, Any], digits: int = 1) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def table(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [f"machine: {m['cpu']}, {m['cores_usable']} cores usable, torch {m['torch']} "
             f"({m['torch_threads']} threads), GPU {m['gpu']}, load average {m['load_average_at_start']}",
             "", "| benchmark | setting | median (min-max) | unit |", "|---|---|---:|---|"]  # fmt: skip
    for r in result.get("overhead", {}).values():
        setting = f"{r['arch']} {r['input']}x{r['input']}, {r['steps']} steps"
        lines += [f"| (a) Lightning task | {setting} | {_fmt(r['lightning_img_s'])} | img/s |",
                  f"| (a) hand-written loop | {setting} | {_fmt(r['loop_img_s'])} | img/s |",
                  f"| (a) Lightning / loop | {setting} | {_fmt(r['lightning_over_loop'], 3)} | ratio |"]  # fmt: skip
    d = result.get("data", {})
    for key, s in d.items():
        if isinstance(s, dict):
            lib, workers = key.split("@")
            lines.append(f"| (b) {lib} | {d['images']} JPEGs -> {d['crop']}, {workers} workers | {_fmt(s)} | img/s |")
    t = result.get("tta")
    if t:
        lines += [f"| (c) time to val acc >= {t['target_val_acc']} | {t['recipe']} | "
                  f"{_fmt(t['seconds_to_target'])} | s |",
                  f"| (c) test acc at the end | epochs to target {t['epochs_to_target']} | "
                  f"{_fmt(t['test_acc'], 4)} | |",
                  f"| (c) whole run | | {_fmt(t['wall_seconds'])} | s |"]  # fmt: skip
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", nargs="+", default=["overhead", "data", "tta"], choices=["overhead", "data", "tta"])
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 repeat, few steps/images, 1 epoch")
    p.add_argument("--repeats", type=int, default=3, help="repeats of (a) and (b)")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--step_scale", type=float, default=1.0, help="(a) times each model's timed steps")
    p.add_argument("--warmup", type=int, default=3, help="(a) untimed steps first")
    p.add_argument("--images", type=int, default=2048, help="(b) images per pass")
    p.add_argument("--crop", type=int, default=224, help="(b) output side")
    p.add_argument("--jpeg_dir", default=None, help="(b) a folder of *.jpg to read instead of the made one")
    p.add_argument("--tta_repeats", type=int, default=2, help="(c) fits of the recipe")
    p.add_argument("--tta_epochs", type=int, default=None, help="(c) override the recipe's max_epochs")
    p.add_argument("--target", type=float, default=0.90, help="(c) validation accuracy to reach")
    p.add_argument("--fashion_dir", default=str(SHARED / "fashion_mnist"))
    p.add_argument("--out", default="runs/bench/bench.json", help="where the JSON goes")
    add_dry_run(p)
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.step_scale, args.warmup, args.images = 1, 0.2, 1, 128
        args.tta_repeats, args.tta_epochs = 1, args.tta_epochs or 1
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if "tta" in args.parts:
        require(fashion_dir=args.fashion_dir)
    if args.dry_run:
        return dry_run_done(f"parts {', '.join(args.parts)}")
    result: dict[str, Any] = {"machine": machine(), "settings": vars(args).copy()}
    start = time.perf_counter()
    for part, fn in (("overhead", overhead), ("data", data), ("tta", time_to_accuracy)):
        if part in args.parts:
            result[part] = fn(args)
    result["bench_seconds"] = round(time.perf_counter() - start, 1)
    text = table(result)
    print(f"\n{text}\n\nbench wall time {result['bench_seconds']} s", flush=True)

    write_json(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    run_command(main)
