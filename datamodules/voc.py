"""Semantic segmentation data: Pascal VOC2012 (the course's lecture 46, d2l "Semantic
Segmentation and the Dataset") as its archive unpacks, and a plain "images + index masks"
folder for a user's own set.

VOC2012's layout is ``VOCdevkit/VOC2012/{JPEGImages/<id>.jpg, SegmentationClass/<id>.png,
ImageSets/Segmentation/{train,val}.txt}`` (1,464 and 1,449 ids). Its masks are palette PNGs
whose palette index is the class (0 background, 1-20 the objects) and 255 marks object
boundaries and unlabelled pixels, which loss and metrics ignore. (The course maps the masks'
RGB colours to classes and so turns the boundary colour into background: wrong, fixed here.)

Training takes a random 320x480 crop, the same for image and mask, of every training image at
least that large (the course's filter: the others are dropped and counted); validation and test
use whole images (one per batch) or, with ``eval_crop``, a fixed centre crop, never a random
one (the course random-crops its test set too). Images are normalised with ImageNet's channel
statistics. VOC2012 has no public test masks: the test split is ``val``.
A batch is ``(images (B, 3, H, W) float, masks (B, H, W) long)``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2
from PIL import Image
from torch.utils.data import DataLoader
from tqdm import tqdm

from datamodules.base import ZooDataModule, read_text, seeded_split
from datamodules.download import Found, download, extract, find_data, say
from datamodules.image_folder import ImageFiles, list_images
from zoo.core.errors import ConfigError
from zoo.core.images import image_size, read_pil, read_rgb
from zoo.core.problems import DataError, Problems

#: the label of pixels that loss and metrics ignore (VOC's object boundaries)
IGNORE_INDEX = 255
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "potted plant", "sheep", "sofa",
               "train", "tv/monitor")  # fmt: skip
BOUNDARY_COLOR = (224, 224, 192)  # palette entry 255 in VOC's PNGs
URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
MD5 = "6cd6e144f989b92b3379bac3b3de84fd"  # torchvision's checksum of the same archive
VOC_ROOT = Path("VOCdevkit") / "VOC2012"
VOC_FILES = {"images": ("JPEGImages/",), "masks": ("SegmentationClass/",),
             "train": ("ImageSets/Segmentation/train.txt",), "val": ("ImageSets/Segmentation/val.txt",)}  # fmt: skip


def voc_palette() -> list[int]:
    """VOC's 256-entry palette, flat ``[r, g, b, ...]`` for ``PIL.Image.putpalette``: the 21
    class colours, then black, and ``BOUNDARY_COLOR`` at 255. Classes past 20 (a user's set)
    get the same bit-interleaved colours VOC's devkit generates."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):  # the devkit's labelcolormap: bits of i spread over r, g, b
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    palette[3 * IGNORE_INDEX : 3 * IGNORE_INDEX + 3] = BOUNDARY_COLOR
    return palette


def read_mask(path: str | os.PathLike, num_classes: int | None = None) -> np.ndarray:
    """A mask PNG as ``(H, W)`` uint8 class indices: a palette PNG's indices (VOC's, not its
    colours) or a greyscale PNG's values; 255 is ignored. With ``num_classes``, any other value
    outside ``[0, num_classes)`` is an error naming the file and the values."""
    im = read_pil(path)
    mode = im.mode
    mask = np.array(im) if mode in ("P", "L") else None
    if mask is None:
        raise DataError(str(path), [f"a {mode} image; expected a palette (P) or greyscale (L) PNG whose "
                                    "values are class indices (255: ignored)"])  # fmt: skip
    if num_classes is not None:
        bad = np.setdiff1d(np.unique(mask), [*range(num_classes), IGNORE_INDEX])
        if bad.size:
            raise DataError(str(path), [f"class indices {bad[:10].tolist()} outside 0..{num_classes - 1} "
                                        f"(and {IGNORE_INDEX}: ignored)"])  # fmt: skip
    return mask


def check_masks(images: Sequence[Path], masks: Sequence[Path], num_classes: int) -> None:
    """Every mask is a palette or greyscale PNG of its image's size whose values are class indices
    (or 255), checked before training starts: a bad mask found when a batch first draws it would
    stop a long run mid-epoch. Sizes and modes come from the headers; each mask is decoded for its
    values (one byte a pixel: VOC's 2,913 masks take seconds, with a progress bar). Every bad mask
    is named in one error."""
    modes, sizes, values, damaged = [], [], [], []
    allowed = np.zeros(256, bool)
    allowed[[*range(min(num_classes, 256)), IGNORE_INDEX]] = True
    pairs = tqdm(zip(images, masks, strict=True), total=len(masks), desc="checking masks", unit="mask",
                 disable=len(masks) < 500, leave=False, file=sys.stderr)  # fmt: skip
    for image, path in pairs:
        try:
            im = read_pil(path)
            iw, ih = image_size(image)
        except DataError as e:  # the mask, or its image's header
            damaged.append(f"{Path(e.where).name} ({e.problems[0]})")
            continue
        if im.mode not in ("P", "L"):
            modes.append(f"{path.name} ({im.mode})")
        elif im.size != (iw, ih):
            sizes.append(f"{path.name} ({im.size[0]}x{im.size[1]}, its image {iw}x{ih})")
        else:
            found = np.flatnonzero(np.bincount(np.asarray(im).ravel(), minlength=256))
            bad = found[~allowed[found]]
            if bad.size:
                values.append(f"{path.name} ({', '.join(map(str, bad[:5].tolist()))})")
    problems = Problems()
    problems.add_each("unreadable", damaged)
    problems.add_each("masks that are not palette (P) or greyscale (L) PNGs of class indices", modes)
    problems.add_each("masks whose size is not their image's", sizes)
    problems.add_each(f"masks with values outside the class indices 0..{num_classes - 1} (and "
                      f"{IGNORE_INDEX}: ignored)", values)  # fmt: skip
    problems.raise_if_any(str(Path(masks[0]).parent) if masks else "masks")


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Save ``(H, W)`` class indices as a VOC-palette PNG (indices kept, shown in VOC's colours)."""
    im = Image.fromarray(mask.astype(np.uint8), mode="P")
    im.putpalette(voc_palette())
    im.save(path, format="PNG")


class SegmentationFiles(ImageFiles):
    """Images and their index masks: ``dataset[i] == (x, y)``, ``x`` a ``(3, H, W)`` float
    tensor, ``y`` an ``(H, W)`` long tensor; ``transform`` (albumentations) sees both, so a crop
    or flip moves image and mask together."""

    def __init__(self, images: Sequence[Path], masks: Sequence[Path], transform: A.Compose,
                 num_classes: int | None = None) -> None:  # fmt: skip
        if len(images) != len(masks):
            raise ConfigError(f"{len(images)} images but {len(masks)} masks")
        super().__init__(images, None, transform)
        self.masks, self.num_classes = list(masks), num_classes

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img, mask = read_rgb(self.images[i]), read_mask(self.masks[i], self.num_classes)
        if img.shape[:2] != mask.shape:
            raise DataError(str(self.masks[i]), [f"mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                                                 f"{self.images[i]} is {img.shape[1]}x{img.shape[0]}"])  # fmt: skip
        self._seed_worker()
        out = self.transform(image=img, mask=mask)
        return out["image"], out["mask"].long()


def segmentation_transform(crop: tuple[int, int] | None, train: bool, mean: Sequence[float] | None,
                           std: Sequence[float] | None, seed: int | None = None) -> A.Compose:  # fmt: skip
    """Training: a random ``crop`` (h, w) of image and mask together; evaluation: the whole
    image, or a fixed centre ``crop`` (padded with ignored pixels where the image is smaller).
    Then normalisation (``mean``/``std`` in [0, 1] units; ``None``: scale to [0, 1])."""
    steps: list[A.BasicTransform] = []
    if crop is not None:
        h, w = crop
        if train:
            steps = [A.RandomCrop(h, w)]
        else:
            steps = [A.PadIfNeeded(h, w, position="center", border_mode=cv2.BORDER_CONSTANT, fill=0,
                                   fill_mask=IGNORE_INDEX), A.CenterCrop(h, w)]  # fmt: skip
    norm = A.ToFloat(max_value=255) if mean is None else A.Normalize(mean=mean, std=std, max_pixel_value=255)
    return A.Compose([*steps, norm, ToTensorV2()], seed=seed)


def pad_collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole training images of different sizes as one batch: padded at the bottom and right
    to the largest, images with zeros, masks with ``IGNORE_INDEX`` (the padding is never scored)."""
    h = max(x.shape[1] for x, _ in batch)
    w = max(x.shape[2] for x, _ in batch)
    images = torch.zeros(len(batch), batch[0][0].shape[0], h, w)
    masks = torch.full((len(batch), h, w), IGNORE_INDEX, dtype=torch.long)
    for i, (x, y) in enumerate(batch):
        images[i, :, : x.shape[1], : x.shape[2]] = x
        masks[i, : y.shape[0], : y.shape[1]] = y
    return images, masks


def large_enough(images: Sequence[Path], crop: tuple[int, int]) -> list[bool]:
    """Whether each image is at least ``crop`` (h, w): the course's filter of training images
    (only the header is read)."""
    return [h >= crop[0] and w >= crop[1] for w, h in map(image_size, images)]


class SegmentationData(ZooDataModule):
    """What the segmentation data modules share: the crop/whole-image pipelines, the filter of
    too-small training images and the padded evaluation batches. Subclasses set ``classes``
    and build ``(images, masks)`` lists per split in ``pairs``."""

    in_channels = 3
    classes: Sequence[str] = ()

    def __init__(self, crop_size: tuple[int, int] | None, eval_crop: tuple[int, int] | None,
                 mean: tuple[float, float, float] | None, std: tuple[float, float, float] | None, seed: int,
                 batch_size: int, num_workers: int, pin_memory: bool) -> None:  # fmt: skip
        super().__init__(batch_size, num_workers, pin_memory)
        if (mean is None) != (std is None):
            raise ConfigError("give both mean and std, or neither")
        for name, size in (("crop_size", crop_size), ("eval_crop", eval_crop)):
            if size is not None and (len(size) != 2 or min(size) < 1):
                raise ConfigError(f"{name} must be (height, width) of positive integers, got {size}")
        self.crop_size = None if crop_size is None else tuple(crop_size)
        self.eval_crop = None if eval_crop is None else tuple(eval_crop)
        self.mean, self.std, self.seed = mean, std, seed
        self.dropped = 0  # training images smaller than crop_size, left out

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def pairs(self, split: str) -> tuple[list[Path], list[Path]]:
        raise NotImplementedError

    def _dataset(self, split: str) -> SegmentationFiles:
        images, masks = self.pairs(split)
        train = split == "train"
        if train and self.crop_size is not None:
            keep = large_enough(images, self.crop_size)
            self.dropped = len(keep) - sum(keep)
            images = [p for p, k in zip(images, keep, strict=True) if k]
            masks = [p for p, k in zip(masks, keep, strict=True) if k]
            h, w = self.crop_size
            say(f"{type(self).__name__}: {len(images)} training images; {self.dropped} smaller than {h}x{w} "
                "dropped (the course's filter)")  # fmt: skip
            if not images:
                raise ConfigError(f"every training image is smaller than crop_size={list(self.crop_size)}")
        check_masks(images, masks, self.num_classes)
        crop = self.crop_size if train else self.eval_crop
        tf = segmentation_transform(crop, train, self.mean, self.std, self.seed)
        return SegmentationFiles(images, masks, tf, self.num_classes)

    def _loader(self, dataset: SegmentationFiles, train: bool, crop: tuple[int, int] | None) -> DataLoader:
        """This module's loader settings. Whole images (no ``crop``) are padded into one batch for
        training; for evaluation they go one at a time, since padding would change what the
        network sees near the edges and so the scores would depend on the batch."""
        whole_eval = crop is None and not train
        return DataLoader(dataset, batch_size=1 if whole_eval else self.batch_size, shuffle=train,
                          num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0,
                          collate_fn=pad_collate if crop is None and train else None)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._train, True, self.crop_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._val, False, self.eval_crop)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._test, False, self.eval_crop)


def _pairs_of(ids: Sequence[str], image_dir: Path, mask_dir: Path, where: str, suffix: str = ".jpg"):
    """Image and mask paths of ``ids``; every missing file is named in one error."""
    problems = Problems()
    images = [image_dir / f"{i}{suffix}" for i in ids]
    masks = [mask_dir / f"{i}.png" for i in ids]
    problems.add_each(f"images listed in {where} missing in {image_dir}", [p.name for p in images if not p.is_file()])
    problems.add_each(f"masks listed in {where} missing in {mask_dir}", [p.name for p in masks if not p.is_file()])
    problems.raise_if_any(where)
    return images, masks


class VOCSegmentation(SegmentationData):
    """Pascal VOC2012 segmentation (21 classes, background included).

    Args:
        data_dir: a folder holding ``VOCdevkit/VOC2012`` (as the archive unpacks), or that
            folder itself; the archive is downloaded and unpacked here (2 GB, md5-checked)
            when no copy is found and ``download`` is true.
        crop_size: (h, w) of the random training crops (course: 320x480); smaller training
            images are dropped. ``None``: whole images.
        eval_crop: (h, w) of a fixed centre crop for validation and test; ``None``: whole images.
        mean, std: per-channel normalisation in [0, 1] units (ImageNet's, as the course).
        seed: seed of the crop stream.
        download: fetch the archive when no copy is on disk.
        classes: the class names in index order, for another set in VOC's layout (such as
            ``scripts/make_shapes_segmentation.py`` writes); default: VOC's 21.
    """

    classes = VOC_CLASSES

    def __init__(
        self,
        data_dir: str = "data",
        crop_size: tuple[int, int] | None = (320, 480),
        eval_crop: tuple[int, int] | None = None,
        mean: tuple[float, float, float] | None = IMAGENET_MEAN,
        std: tuple[float, float, float] | None = IMAGENET_STD,
        seed: int = 0,
        download: bool = True,
        classes: list[str] | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(crop_size, eval_crop, mean, std, seed, batch_size, num_workers, pin_memory)
        self.save_hyperparameters()
        self.data_dir = Path(data_dir).expanduser()
        self.download = download
        if classes is not None:
            self.classes = tuple(classes)

    def _find(self, fetch: bool) -> Found:
        d = self.data_dir
        return find_data(
            "VOC2012",
            [(d / VOC_ROOT, VOC_FILES), (d, VOC_FILES), (d / "VOC2012", VOC_FILES)],
            fetch=self._download if fetch else None,
            source=URL,
            no_fetch="download=False" if not self.download else "not downloaded yet: prepare_data() fetches it",
            how=f"Download {URL} (md5 {MD5}) and unpack it in --data.init_args.data_dir.",
        )

    def _download(self) -> None:
        archive = self.data_dir / URL.rsplit("/", 1)[-1]
        extract(download(URL, archive, md5=MD5), self.data_dir)

    def prepare_data(self) -> None:
        self._find(fetch=self.download)

    def pairs(self, split: str) -> tuple[list[Path], list[Path]]:
        found = self._find(fetch=False)  # prepare_data (rank 0 only) downloads
        listing = found.paths[split]
        ids = [line.strip() for line in read_text(listing).splitlines() if line.strip()]
        if not ids:
            raise DataError(str(listing), ["lists no image ids; expected one id (e.g. 2007_000032) per line"])
        return _pairs_of(ids, found.paths["images"], found.paths["masks"], str(listing))

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "_train", None) is not None:
            return
        self._train = self._dataset("train")
        self._val = self._test = self._dataset("val")


class SegmentationFolder(SegmentationData):
    """A user's segmentation set: ``images/<name>.{jpg,png,...}`` and ``masks/<name>.png`` (index
    masks: palette or greyscale PNGs, 255 ignored), and ``classes.txt`` (one class name a line,
    line ``k`` naming index ``k - 1``) or ``num_classes``. Validation images are a seeded
    ``val_size`` split (count or fraction); the test split is the validation split.

    Args:
        data_dir: the folder holding ``images/`` and ``masks/``.
        num_classes: the number of classes when there is no ``classes.txt``.
        val_size: images held out for validation.
        Others as for ``VOCSegmentation`` (``crop_size`` defaults to whole images here).
    """

    def __init__(
        self,
        data_dir: str = "data",
        num_classes: int | None = None,
        val_size: int | float = 0.2,
        crop_size: tuple[int, int] | None = None,
        eval_crop: tuple[int, int] | None = None,
        mean: tuple[float, float, float] | None = IMAGENET_MEAN,
        std: tuple[float, float, float] | None = IMAGENET_STD,
        seed: int = 0,
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(crop_size, eval_crop, mean, std, seed, batch_size, num_workers, pin_memory)
        self.save_hyperparameters()
        self.data_dir = Path(data_dir).expanduser()
        self.val_size, self._given_classes = val_size, num_classes
        self._classes: list[str] | None = None

    @property
    def classes(self) -> list[str]:  # read by zoo.fit (through num_classes) before setup
        if self._classes is None:
            layout = {"images": ("images/",), "masks": ("masks/",)}
            found = find_data("SegmentationFolder", [(self.data_dir, layout)],
                              how="Put images in images/, their index masks (same names, .png) in masks/.")  # fmt: skip
            listing = found.folder / "classes.txt"
            if listing.is_file():
                self._classes = [line.strip() for line in read_text(listing).splitlines() if line.strip()]
            elif self._given_classes:
                self._classes = [str(k) for k in range(self._given_classes)]
            else:
                raise ConfigError(f"{self.data_dir}: no classes.txt; give num_classes or write one name a line")
        return self._classes

    def pairs(self, split: str) -> tuple[list[Path], list[Path]]:
        images = list_images(self.data_dir / "images")
        if not images:
            raise DataError(str(self.data_dir / "images"), ["no images (.png, .jpg, ...)"])
        masks = [self.data_dir / "masks" / f"{p.stem}.png" for p in images]
        problems = Problems()
        problems.add_each(f"images without a mask in {self.data_dir / 'masks'}",
                          [p.name for p, m in zip(images, masks, strict=True) if not m.is_file()])  # fmt: skip
        problems.raise_if_any(str(self.data_dir))
        train, val = seeded_split(len(images), self.val_size, self.seed)
        idx = (train if split == "train" else val).tolist()
        return [images[i] for i in idx], [masks[i] for i in idx]

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "_train", None) is not None:
            return
        self._train = self._dataset("train")
        self._val = self._test = self._dataset("val")
