"""Image augmentation pipelines, chosen by name in a recipe (``augment: cifar``).

The course's image augmentation (lecture 36, d2l "Image Augmentation"): random horizontal flip,
random resized crop (``scale=(0.1, 1), ratio=(0.5, 2)``) and colour jitter (brightness,
contrast, saturation and hue 0.5); the fine-tuning recipe (lecture 37) crops with ImageNet's
defaults and evaluates on a centre crop; the Kaggle CIFAR-10 recipe resizes to 40 and crops
back to 32; and CIFAR's usual pad-4-crop-flip (He et al., 2016, section 4.2). Built with
albumentations, each pipeline ends with normalisation and a ``(C, H, W)`` float tensor.

Reproducible under a seed: every ``A.Compose`` draws from its own generator seeded by ``seed``
(global seeds do not reach it); ``datamodules.image_folder.ImageFiles`` reseeds it in each
DataLoader worker so workers do not repeat one stream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

from zoo.core.errors import ConfigError

Stats = float | Sequence[float] | None


def _size(size: int | None, name: str) -> int:
    if not size:
        raise ConfigError(f"augment={name!r} needs an image size (the data module's image_size)")
    return size


def _resize(size: int | None) -> list[A.BasicTransform]:
    return [A.Resize(size, size)] if size else []


def _flip(size: int | None) -> list[A.BasicTransform]:
    # the course's CIFAR-10 augmentation in lecture 36: flips only
    return [*_resize(size), A.HorizontalFlip(p=0.5)]


def _course(size: int | None) -> list[A.BasicTransform]:
    # lecture 36's combined demo: flip, then colour, then shape
    s = _size(size, "course")
    return [
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.5, p=1.0),
        A.RandomResizedCrop((s, s), scale=(0.1, 1.0), ratio=(0.5, 2.0)),
    ]


def _crop_flip(size: int | None) -> list[A.BasicTransform]:
    # lecture 37 (fine-tuning on hot dogs): ImageNet-style random resized crop and flip
    s = _size(size, "crop_flip")
    return [A.RandomResizedCrop((s, s)), A.HorizontalFlip(p=0.5)]


def _crop_flip_jitter(size: int | None) -> list[A.BasicTransform]:
    # the course's Kaggle dog-breed recipe: crop, flip, and brightness/contrast/saturation 0.4
    s = _size(size, "crop_flip_jitter")
    return [
        A.RandomResizedCrop((s, s), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.0, p=1.0),
    ]


def _cifar(size: int | None) -> list[A.BasicTransform]:
    # zero-pad 4 pixels a side, take a random crop of the original size, flip
    s = _size(size, "cifar")
    return [
        *_resize(size),
        A.PadIfNeeded(s + 8, s + 8, border_mode=cv2.BORDER_CONSTANT, fill=0),
        A.RandomCrop(s, s),
        A.HorizontalFlip(p=0.5),
    ]


def _kaggle_cifar(size: int | None) -> list[A.BasicTransform]:
    # the course's Kaggle CIFAR-10 recipe: resize to 40, square crop of 64-100% area back to 32
    s = _size(size, "kaggle_cifar")
    big = round(s * 40 / 32)
    return [
        A.Resize(big, big),
        A.RandomResizedCrop((s, s), scale=(0.64, 1.0), ratio=(1.0, 1.0)),
        A.HorizontalFlip(p=0.5),
    ]


def _center_crop(size: int | None) -> list[A.BasicTransform]:
    # evaluation for crop-trained models (lecture 37): resize to 256/224 of the size, centre crop
    s = _size(size, "center_crop")
    big = round(s * 256 / 224)
    return [A.Resize(big, big), A.CenterCrop(s, s)]


#: name -> the augmenting transforms (before normalisation); "none" is the evaluation pipeline
PIPELINES: dict[str, Callable[[int | None], list[A.BasicTransform]]] = {
    "none": _resize,
    "flip": _flip,
    "course": _course,
    "crop_flip": _crop_flip,
    "crop_flip_jitter": _crop_flip_jitter,
    "cifar": _cifar,
    "kaggle_cifar": _kaggle_cifar,
    "center_crop": _center_crop,
}


def build(
    name: str = "none",
    size: int | None = None,
    mean: Stats = None,
    std: Stats = None,
    seed: int | None = None,
) -> A.Compose:
    """The pipeline ``name`` for ``(H, W, C)`` uint8 images, ending in a ``(C, size, size)``
    float tensor standardised by ``mean``/``std`` (given in [0, 1] units; ``None`` only scales
    to [0, 1]). ``size`` ``None`` keeps the input size where the pipeline allows it."""
    if name not in PIPELINES:
        raise ConfigError(f"unknown augmentation {name!r}; choose one of {sorted(PIPELINES)}")
    if (mean is None) != (std is None):
        raise ConfigError("give both mean and std, or neither")
    norm = A.ToFloat(max_value=255) if mean is None else A.Normalize(mean=mean, std=std, max_pixel_value=255)
    return A.Compose([*PIPELINES[name](size), norm, ToTensorV2()], seed=seed)


def eval_preprocessing(name: str, size: int | None, mean: Stats, std: Stats, in_channels: int = 3) -> dict:
    """What a checkpoint records of a data module's evaluation pipeline (plain values), so that
    ``zoo predict`` and ``zoo export`` rebuild it without the data set: ``from_preprocessing``."""

    def plain(v: Stats) -> float | list[float] | None:
        return None if v is None else float(v) if isinstance(v, (int, float)) else [float(s) for s in v]

    if name not in PIPELINES:
        raise ConfigError(f"unknown augmentation {name!r}; choose one of {sorted(PIPELINES)}")
    return {"pipeline": name, "image_size": size, "mean": plain(mean), "std": plain(std), "in_channels": in_channels}


def from_preprocessing(spec: dict) -> A.Compose:
    """The evaluation pipeline ``eval_preprocessing`` described, for ``(H, W)`` grey or
    ``(H, W, 3)`` RGB uint8 images."""
    return build(spec["pipeline"], spec["image_size"], spec["mean"], spec["std"])
