"""Object detection data: the course's banana CSV layout, YOLO txt labels and COCO json, read as
their files lie, with augmentations that move the boxes with the image.

* banana (d2l section 13.6): ``bananas_train/label.csv`` and ``bananas_val/label.csv``
  (``img_name,label,xmin,ymin,xmax,ymax`` in pixels, one row per box) beside ``images/``;
* YOLO (``../shared/data/banana_yolo_roboflow``): ``{train,valid,test}/images/*.jpg`` and
  ``labels/<same stem>.txt``, one ``class cx cy w h`` line per box in fractions of the image;
  class names from ``data.yaml`` (``names``); an image without a label file has no boxes;
* COCO: a json with ``images`` (``id, file_name, width, height``), ``annotations`` (``id,
  image_id, category_id, bbox: [x, y, w, h]`` pixels) and ``categories`` (``id, name``).

A sample is ``(image, target)``: a ``(3, H, W)`` float image in [0, 1] and ``{"boxes": (G, 4)
xyxy pixels of that image, "labels": (G,) int64 classes counted from 0, "size": (2,) the original
height and width}``; ``collate`` keeps the targets as a list, so images hold any number of boxes
(none included) and no padding rows reach a model. Image ids (COCO's may overflow int64) stay
Python ints in ``DetectionRecord`` and never enter a tensor.

Every problem of the label files (a box outside its image or of non-positive size, an unknown
category, an annotation for a missing image, a YOLO line with the wrong number of fields, an image
that does not decode) is collected into one ``DataError`` naming the file and line or annotation id.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from datamodules.base import FoldedData, ZooDataModule, read_csv, read_text
from datamodules.download import find_data
from datamodules.image_folder import list_images
from zoo.core.errors import ConfigError
from zoo.core.images import image_size, read_rgb
from zoo.core.io import read_yaml
from zoo.core.problems import DataError, Problems

#: how far (pixels; fractions for YOLO) a box may stick out of its image before it is an error:
#: labelling tools round the edges
TOLERANCE = 1.0
AUGMENTS = ("none", "flip", "jitter", "ssd")


@dataclass
class DetectionRecord:
    """One image and its boxes (``xyxy`` pixels of the original image, classes from 0)."""

    image_id: int | str
    path: Path
    boxes: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)


# -- readers ------------------------------------------------------------------------------------
def _header_size(path: Path) -> tuple[int, int] | str:
    """``(width, height)`` from the image's header, or what is wrong with the file (missing, no
    image, too large), naming it."""
    try:
        return image_size(path)
    except DataError as e:
        return str(e)


def check_box(box: Sequence[float], width: float, height: float, tol: float = TOLERANCE) -> str | None:
    """Why an ``xyxy`` box is not a box of a ``width x height`` image, or None when it is."""
    x1, y1, x2, y2 = box
    if not all(map(_finite, box)):
        return f"box {list(box)} is not four finite numbers"
    if x2 <= x1 or y2 <= y1:
        return f"box {list(box)} has non-positive size"
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        return f"box {list(box)} lies outside its {width:g}x{height:g} image"
    return None


def _finite(v: float) -> bool:
    return v == v and abs(v) != float("inf")


def _clip(box: Sequence[float], width: float, height: float) -> list[float]:
    return [min(max(box[0], 0.0), width), min(max(box[1], 0.0), height),
            min(max(box[2], 0.0), width), min(max(box[3], 0.0), height)]  # fmt: skip


def read_banana_csv(folder: Path) -> list[DetectionRecord]:
    """The course's ``label.csv`` + ``images/`` (one row per box; a banana image has one)."""
    csv = folder / "label.csv"
    table = read_csv(csv, dtype=str, keep_default_na=False)
    problems = Problems()
    columns = ["img_name", "label", "xmin", "ymin", "xmax", "ymax"]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(str(csv), [f"missing column {', '.join(missing)} (expected {','.join(columns)})"])
    records: dict[str, DetectionRecord] = {}
    sizes: dict[str, tuple[int, int] | None] = {}
    for line, row in enumerate(table[columns].itertuples(index=False), start=2):
        name = row.img_name
        path = folder / "images" / name
        if not path.resolve().is_relative_to(folder.resolve()):
            problems.add(f"{csv} line {line}: image {name!r} lies outside {folder} (refused)")
            continue
        if name not in sizes:
            sizes[name] = _header_size(path)
        if isinstance(sizes[name], str):
            problems.add(f"{csv} line {line}: image {sizes[name]}")
            continue
        try:
            label, box = int(row.label), [float(v) for v in row[2:]]
        except ValueError:
            problems.add(f"{csv} line {line}: expected an integer label and four numbers, got {list(row[1:])}")
            continue
        why = check_box(box, *sizes[name])
        if why or label < 0:
            problems.add(f"{csv} line {line}: {why or f'label {label} is negative'}")
            continue
        rec = records.setdefault(name, DetectionRecord(Path(name).stem, path))
        rec.boxes.append(_clip(box, *sizes[name]))
        rec.labels.append(label)
    problems.raise_if_any(str(csv))
    return list(records.values())


def read_yolo_split(folder: Path, num_classes: int) -> list[DetectionRecord]:
    """``folder/images/*`` with ``folder/labels/<stem>.txt`` (YOLO: ``class cx cy w h`` fractions)."""
    problems = Problems()
    images = list_images(folder / "images")
    records = []
    for path in images:
        size = _header_size(path)
        if isinstance(size, str):
            problems.add(size)
            continue
        width, height = size
        rec = DetectionRecord(path.stem, path)
        label_file = folder / "labels" / f"{path.stem}.txt"
        text = read_text(label_file) if label_file.is_file() else ""  # no label file: no boxes (YOLO's rule)
        for line, raw in enumerate(text.splitlines(), start=1):
            fields = raw.split()
            if not fields:
                continue
            if len(fields) != 5:
                problems.add(f"{label_file} line {line}: expected 5 fields (class cx cy w h), got {len(fields)}")
                continue
            try:
                cls, (cx, cy, w, h) = int(fields[0]), map(float, fields[1:])
            except ValueError:
                problems.add(f"{label_file} line {line}: expected an integer class and four numbers: {raw!r}")
                continue
            if not 0 <= cls < num_classes:
                problems.add(f"{label_file} line {line}: class {cls} is not one of the {num_classes} in data.yaml")
                continue
            box = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
            why = check_box(box, width, height)
            if why:
                problems.add(f"{label_file} line {line}: {why}")
                continue
            rec.boxes.append(_clip(box, width, height))
            rec.labels.append(cls)
        records.append(rec)
    problems.raise_if_any(str(folder))
    return records


def yolo_classes(data_yaml: Path) -> list[str]:
    """The class names of a YOLO ``data.yaml`` (``names`` as a list or an ``{index: name}`` map)."""
    names = (read_yaml(data_yaml) or {}).get("names")
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, list) or not names:
        raise DataError(str(data_yaml), ["no 'names' list of class names"])
    return [str(n) for n in names]


@dataclass
class CocoSet:
    """A COCO json as read: records in the file's image order and the categories
    ``[(id, name)]`` sorted by id (label ``k`` is the ``k``-th)."""

    records: list[DetectionRecord]
    categories: list[tuple[int, str]]


def read_coco(json_path: Path, images_dir: Path, categories: Sequence[tuple[int, str]] | None = None) -> CocoSet:
    """A COCO detection json; ``categories`` fixes the id -> label order (else the file's, by id).

    Ids are kept as Python ints exactly as json gives them (64-bit unsigned ids survive)."""
    try:
        coco = json.loads(read_text(json_path))
    except json.JSONDecodeError as e:
        raise DataError(str(json_path), [f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"]) from None
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "annotations")):
        raise DataError(str(json_path), ["expected a COCO object with 'images' and 'annotations' lists"])
    problems = Problems()
    if categories is None:
        cats = coco.get("categories")
        if not isinstance(cats, list) or not cats:
            raise DataError(str(json_path), ["no 'categories' list"])
        try:  # a category that is no object, or whose id is no integer
            categories = sorted((int(c["id"]), str(c.get("name", c["id"]))) for c in cats)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise DataError(str(json_path), ["'categories' must be objects with an integer 'id'"]) from None
    label_of = {cid: k for k, (cid, _) in enumerate(categories)}
    records: dict[int, DetectionRecord] = {}
    sizes: dict[int, tuple[float, float]] = {}
    root = images_dir.resolve()
    for n, im in enumerate(coco["images"]):
        try:
            iid, name = im["id"], str(im["file_name"])
            hash(iid)  # an id that is a list or an object cannot key the images
        except (KeyError, TypeError):
            problems.add(f"images[{n}]: expected id and file_name")
            continue
        path = images_dir / name
        if iid in records:
            problems.add(f"images[{n}]: duplicate image id {iid}")
            continue
        if "\0" in name or not path.resolve().is_relative_to(root):  # a NUL byte: no file name, refused too
            problems.add(f"image {iid}: file_name {name!r} lies outside {images_dir} (refused)")
            continue
        size = _header_size(path)
        if isinstance(size, str):
            problems.add(f"image {iid}: {size}")
            continue
        try:  # a width or height that is no number is a mismatch too
            declared = (int(im["width"]), int(im["height"])) if "width" in im and "height" in im else size
        except (TypeError, ValueError, OverflowError):
            declared = None
        if declared != size:
            problems.add(f"image {iid}: {name} is {size[0]}x{size[1]}, the json says {im['width']}x{im['height']}")
        records[iid], sizes[iid] = DetectionRecord(iid, path), size
    known_images = {im.get("id") for im in coco["images"] if isinstance(im, dict)
                    and isinstance(im.get("id"), Hashable)}  # fmt: skip
    for n, ann in enumerate(coco["annotations"]):
        aid = ann.get("id", f"annotations[{n}]") if isinstance(ann, dict) else f"annotations[{n}]"
        try:
            iid, cid, (x, y, w, h) = ann["image_id"], ann["category_id"], map(float, ann["bbox"])
            hash((iid, cid))  # ids that are lists or objects
        except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: an integer past float's range
            problems.add(f"annotation {aid}: expected image_id, category_id and bbox [x, y, w, h]")
            continue
        if iid not in known_images:
            problems.add(f"annotation {aid}: image_id {iid} is not in images")
            continue
        if cid not in label_of:
            problems.add(f"annotation {aid}: unknown category_id {cid} (expected one of {sorted(label_of)})")
            continue
        if iid not in records:  # its image already has a problem
            continue
        box = [x, y, x + w, y + h]
        why = check_box(box, *sizes[iid])
        if why:
            problems.add(f"annotation {aid}: {why}")
            continue
        records[iid].boxes.append(_clip(box, *sizes[iid]))
        records[iid].labels.append(label_of[cid])
    problems.raise_if_any(str(json_path))
    return CocoSet(list(records.values()), list(categories))


# -- transforms and samples ---------------------------------------------------------------------
def build_augment(name: str, image_size: int | None, fill: int = 124) -> Any:
    """The random part of a pipeline (after the image was resized to ``image_size``), on
    ``tv_tensors`` so the boxes move with the image; ``SanitizeBoundingBoxes`` drops the boxes a
    crop left degenerate (and their labels).

    ``none``; ``flip`` (horizontal); ``jitter``: scale jitter (0.5-1.5x) then a crop back to
    ``image_size`` (padded where the image shrank), and a flip; ``ssd``: SSD's zoom out (up to
    2x, half the time), IoU crop, resize and flip (Liu et al., 2016, section 2.2)."""
    from torchvision.transforms import v2

    if name not in AUGMENTS:
        raise ConfigError(f"unknown detection augmentation {name!r}; choose one of {', '.join(AUGMENTS)}")
    if name in ("jitter", "ssd") and not image_size:
        raise ConfigError(f"augment={name!r} needs an image_size")
    steps: list[Any] = []
    if name == "jitter":
        steps = [v2.ScaleJitter((image_size, image_size), scale_range=(0.5, 1.5), antialias=True),
                 v2.RandomCrop(image_size, pad_if_needed=True, fill=fill)]  # fmt: skip
    elif name == "ssd":
        steps = [v2.RandomZoomOut(fill=fill, side_range=(1.0, 2.0), p=0.5), v2.RandomIoUCrop(),
                 v2.Resize((image_size, image_size), antialias=True)]  # fmt: skip
    if name != "none":
        steps.append(v2.RandomHorizontalFlip())
    steps.append(v2.SanitizeBoundingBoxes(min_size=1.0))
    return v2.Compose(steps)


class DetectionDataset(Dataset):
    """``records`` as ``(image, target)`` samples (see the module's docstring).

    Each image is decoded and resized to ``image_size`` (its boxes with it; ``None`` keeps the
    original size), optionally once and kept in memory (``cache``), then ``augment`` runs."""

    def __init__(self, records: Sequence[DetectionRecord], image_size: int | None, augment: str = "none",
                 cache: bool = False) -> None:  # fmt: skip
        self.records, self.image_size = list(records), image_size
        self.augment, self.cache = build_augment(augment, image_size), cache
        self._kept: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.records)

    def load(self, i: int) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
        """The resized image and boxes as ``tv_tensors``, the labels and the original size."""
        if i in self._kept:
            return self._kept[i]
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import functional as TF

        rec = self.records[i]
        image = torch.from_numpy(read_rgb(rec.path)).permute(2, 0, 1)  # (3, H, W) uint8; names a bad file
        size = torch.tensor(image.shape[-2:])
        boxes = tv_tensors.BoundingBoxes(torch.tensor(rec.boxes, dtype=torch.float32).reshape(-1, 4),
                                         format="XYXY", canvas_size=tuple(image.shape[-2:]))  # fmt: skip
        image = tv_tensors.Image(image)
        if self.image_size:
            image = TF.resize(image, [self.image_size, self.image_size], antialias=True)
            boxes = TF.resize(boxes, [self.image_size, self.image_size])
        out = (image, boxes, torch.tensor(rec.labels, dtype=torch.int64), size)
        if self.cache:
            self._kept[i] = out
        return out

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image, boxes, labels, size = self.load(i)
        out = self.augment({"image": image, "boxes": boxes, "labels": labels})
        image = out["image"].as_subclass(torch.Tensor).float().div_(255)  # (3, H, W) in [0, 1]
        return image, {"boxes": out["boxes"].as_subclass(torch.Tensor), "labels": out["labels"], "size": size}


def collate(batch: Sequence[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[Any, list[dict]]:
    """``(images, targets)``: images stacked to ``(B, 3, H, W)`` when they share a size (else a
    list), targets a list of per-image dicts with however many boxes each has."""
    images = [b[0] for b in batch]
    same = len({tuple(im.shape) for im in images}) == 1
    return (torch.stack(images) if same else images), [b[1] for b in batch]


# -- data modules -------------------------------------------------------------------------------
class DetectionData(ZooDataModule):
    """Base of the detection data modules: subclasses read their layout in ``read_splits``
    (records of train, validation, test and the class names).

    ``classes`` and, for COCO sets, the category ids are this module's state, which Lightning
    saves in every checkpoint. With ``class_balanced`` the training sampler draws images in
    proportion to the rarest class among their boxes' inverse frequency (as many draws per
    epoch as images), so a rare class (the CowBoy belts) is seen about as often as a common one.

    Args:
        data_dir: the data set's folder.
        image_size: side length the images are resized to (``None``: as they are, for
            torchvision's detectors, which resize themselves).
        augment: training pipeline: ``none``, ``flip``, ``jitter`` or ``ssd`` (``build_augment``).
        class_balanced: class-balanced sampling of training images.
        cache: keep each resized image in memory after its first decode.
        seed: the balanced sampler's (and a seeded validation split's) generator seed.
        classes: the class names, when a recipe states them (the model is then sized without
            reading the data, and the data's names must be these); else read from the data.
    """

    in_channels = 3

    def __init__(self, data_dir: str = "data", image_size: int | None = 256, augment: str = "none",
                 class_balanced: bool = False, cache: bool = False, seed: int = 0, batch_size: int = 32,
                 num_workers: int = 0, pin_memory: bool = False, classes: list[str] | None = None) -> None:  # fmt: skip
        super().__init__(batch_size, num_workers, pin_memory)
        self.save_hyperparameters()
        build_augment(augment, image_size)  # fail at parse time, not after reading the data
        self.data_dir = Path(data_dir).expanduser()
        self.image_size, self.augment, self.class_balanced, self.cache = image_size, augment, class_balanced, cache
        self.seed = seed
        self.classes: list[str] | None = list(classes) if classes else None
        self._splits: tuple[list, list, list] | None = None

    def read_splits(self) -> tuple[list[DetectionRecord], list[DetectionRecord], list[DetectionRecord], list[str]]:
        raise NotImplementedError

    def splits(self) -> tuple[list[DetectionRecord], list[DetectionRecord], list[DetectionRecord]]:
        if self._splits is None:
            *splits, classes = self.read_splits()
            self._splits = tuple(splits)
            if self.classes is None:
                self.classes = list(classes)
            elif list(classes) != self.classes:
                why = f"the data's classes {classes} differ from the given ones, {self.classes}"
                raise DataError(str(self.data_dir), [why])
        return self._splits

    @property
    def num_classes(self) -> int:  # read by zoo.fit to size the model, before setup
        if self.classes is None:
            self.splits()
        return len(self.classes)

    def setup(self, stage: str | None = None) -> None:
        train, val, test = self.splits()
        self._train = DetectionDataset(train, self.image_size, self.augment, self.cache)
        self._val = DetectionDataset(val, self.image_size, "none", self.cache)
        self._test = self._val if test is val else DetectionDataset(test, self.image_size, "none", self.cache)

    def loader(self, dataset: Dataset, shuffle: bool = False, **kwargs: Any) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0, collate_fn=collate,
                          **kwargs)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        if not self.class_balanced:
            return self.loader(self._train, shuffle=True)
        return self.loader(self._train, sampler=balanced_sampler(self._train.records, self.seed))

    def state_dict(self) -> dict[str, Any]:
        self.splits()
        return {"classes": list(self.classes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.classes = list(state["classes"])


def balanced_sampler(records: Sequence[DetectionRecord], seed: int = 0) -> WeightedRandomSampler:
    """Draw each image with weight ``1 / count`` of its rarest class (images without boxes: of
    the commonest), ``len(records)`` draws with replacement."""
    counts = Counter(label for r in records for label in set(r.labels))
    top = max(counts.values(), default=1)
    weights = [1.0 / min((counts[c] for c in set(r.labels)), default=top) for r in records]
    return WeightedRandomSampler(weights, len(records), replacement=True,
                                 generator=torch.Generator().manual_seed(seed))  # fmt: skip


def rarest_labels(records: Sequence[DetectionRecord]) -> list[int]:
    """Each image's rarest label by box count over ``records`` (-1 for an image without boxes):
    the stratum of an image when folds are dealt, so every fold gets its share of a rare class."""
    counts = Counter(label for r in records for label in r.labels)
    return [min(set(r.labels), key=lambda k: counts[k]) if r.labels else -1 for r in records]


BANANA_FILES = {"train labels": ["bananas_train/label.csv"], "val labels": ["bananas_val/label.csv"],
                "train images": ["bananas_train/images/"], "val images": ["bananas_val/images/"]}  # fmt: skip
YOLO_FILES = {"names": ["data.yaml"], "train": ["train/images/"], "valid": ["valid/images/"]}


class Bananas(DetectionData):
    """The course's banana detection set (d2l section 13.6): ``bananas_train/`` and
    ``bananas_val/``, each a ``label.csv`` and ``images/``; 256x256 images, one class. The
    validation set is also the test set (the course has no third split)."""

    def read_splits(self):
        how = "The course downloads banana-detection.zip from d2l's data server; unpack it there."
        found = find_data("banana-detection", [(self.data_dir, BANANA_FILES)], how=how)
        train = read_banana_csv(found.paths["train labels"].parent)
        val = read_banana_csv(found.paths["val labels"].parent)
        labels = {lab for r in train + val for lab in r.labels}
        return train, val, val, ["banana"] if labels <= {0} else [str(k) for k in range(max(labels) + 1)]


class YoloDetection(DetectionData):
    """A YOLO data set: ``data.yaml`` (class ``names``) and ``{train,valid,test}/{images,labels}/``.
    Without ``test/`` the validation split is also the test split. The default is the banana
    stand-in of ``../shared/data/banana_yolo_roboflow`` (255 train, 24 valid, 12 test images).

    Args: see ``DetectionData``."""

    def read_splits(self):
        how = "Expected a YOLO export (Roboflow's 'YOLOv5/v8' format)."
        found = find_data("YOLO detection set", [(self.data_dir, YOLO_FILES)], how=how)
        classes = yolo_classes(found.paths["names"])
        train = read_yolo_split(self.data_dir / "train", len(classes))
        val = read_yolo_split(self.data_dir / "valid", len(classes))
        has_test = (self.data_dir / "test/images").is_dir()
        test = read_yolo_split(self.data_dir / "test", len(classes)) if has_test else val
        return train, val, test, classes


class CocoDetection(FoldedData, DetectionData):
    """A COCO json (``annotations``) with its images (``images_dir``, relative to ``data_dir``);
    the validation split is fold ``fold`` of ``folds_file`` or a seeded ``val_size`` split, and is
    also the test split. Labels are the categories in id order; ``category_ids`` (state, saved in
    checkpoints) maps them back.

    Args:
        annotations, images_dir: the json and the image folder, relative to ``data_dir``.
        val_size, seed, fold, folds_file: the validation split.
        Others: see ``DetectionData``.
    """

    def __init__(self, data_dir: str = "data", annotations: str = "train.json", images_dir: str = "images",
                 val_size: int | float = 0.2, seed: int = 0, fold: int | None = None,
                 folds_file: str | None = None, image_size: int | None = 256, augment: str = "none",
                 class_balanced: bool = False, cache: bool = False, batch_size: int = 32,
                 num_workers: int = 0, pin_memory: bool = False, classes: list[str] | None = None) -> None:  # fmt: skip
        super().__init__(data_dir, image_size, augment, class_balanced, cache, seed, batch_size, num_workers,
                         pin_memory, classes, fold=fold, folds_file=folds_file)  # fmt: skip
        self.annotations, self.images_dir = annotations, images_dir
        self.val_size = val_size
        self.category_ids: list[int] | None = None

    def read_coco(self) -> CocoSet:
        found = find_data(type(self).__name__, [(self.data_dir, {"annotations": [self.annotations],
                                                                 "images": [f"{self.images_dir}/"]})])  # fmt: skip
        known = None
        if self.category_ids is not None and self.classes is not None:
            known = list(zip(self.category_ids, self.classes))
        coco = read_coco(found.paths["annotations"], found.paths["images"], known)
        self.category_ids = [cid for cid, _ in coco.categories]
        return coco

    def fold_rows(self) -> tuple[list[str], list[int]]:
        """The images' ids and, to stratify the folds by, each image's rarest label."""
        records = self.read_coco().records
        return [str(r.image_id) for r in records], rarest_labels(records)

    def read_splits(self):
        coco = self.read_coco()
        tr, va = self.split([str(r.image_id) for r in coco.records], self.val_size, self.seed)
        train, val = [coco.records[i] for i in tr], [coco.records[i] for i in va]
        return train, val, val, [name for _, name in coco.categories]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        return {**state, "category_ids": list(self.category_ids)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.category_ids = [int(c) for c in state["category_ids"]]
