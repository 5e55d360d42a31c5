"""Labelled image files (or decoded arrays) as ``(C, H, W)`` float tensors, for any image set.

The building block of the image data modules (CIFAR-10's Kaggle layout, Kaggle competitions):
a list of image paths and integer labels (or ``None`` for an unlabelled test set), decoded to
RGB and passed through an albumentations pipeline (``datamodules.augment``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from zoo.core.errors import ConfigError
from zoo.core.images import read_rgb

#: the label an unlabelled image gets (so batches keep the ``(x, y)`` shape)
NO_LABEL = -1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

Image = str | os.PathLike | np.ndarray


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of ``folder``, sorted by name, numerically where every stem is an
    integer (Kaggle ids: ``2.png`` before ``10.png``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such image folder")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    numeric = all(p.stem.isascii() and p.stem.isdigit() for p in files)  # "²" is a digit to str.isdigit
    return sorted(files, key=lambda p: (int(p.stem), p.name) if numeric else (0, p.name))


class ImageFiles(Dataset):
    """Images with integer labels: ``dataset[i] == (x, y)`` with ``x`` a ``(C, H, W)`` float
    tensor and ``y`` a Python int (``NO_LABEL`` when ``labels`` is ``None``).

    Args:
        images: image file paths, or already decoded ``(H, W, C)`` uint8 arrays (e.g. the rows
            of CIFAR's pickles); a path is decoded by ``read_rgb`` when the item is fetched.
        labels: one integer class per image, or ``None`` for an unlabelled set.
        transform: an albumentations pipeline (``datamodules.augment.build``) ending in a tensor;
            ``None`` just scales to [0, 1].
        cache: decode every file once, up front, and keep the arrays in memory (worth it for
            small images such as CIFAR's, where decoding costs as much as augmenting).
    """

    def __init__(
        self,
        images: Sequence[Image],
        labels: Sequence[int] | None = None,
        transform: Callable | None = None,
        cache: bool = False,
    ) -> None:
        if labels is not None and len(labels) != len(images):
            raise ConfigError(f"{len(images)} images but {len(labels)} labels")
        self.images = [read_rgb(p) if cache and not isinstance(p, np.ndarray) else p for p in images]
        self.labels = None if labels is None else [int(y) for y in labels]
        self.transform = transform
        self._worker_seeded: int | None = None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.images[i]
        if not isinstance(img, np.ndarray):
            img = read_rgb(img)
        self._seed_worker()
        if self.transform is None:
            x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255)
        else:
            x = self.transform(image=img)["image"]
        return x, NO_LABEL if self.labels is None else self.labels[i]

    def _seed_worker(self) -> None:
        """Give each DataLoader worker its own augmentation stream. Every worker holds a copy of
        the same seeded pipeline, which would repeat one stream in all workers; the worker's
        seed (the loader's base seed, drawn from the seeded main process, plus its id) keeps
        the streams distinct and still reproducible under ``seed_everything``."""
        info = get_worker_info()
        if info is None or self._worker_seeded == info.seed or not hasattr(self.transform, "set_random_seed"):
            return
        self.transform.set_random_seed(info.seed % 2**32)
        self._worker_seeded = info.seed
