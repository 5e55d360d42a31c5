"""Kaggle "CowBoy Outfits Detection" (the course's lectures 50 and 71): ``images/``, ``train.json``
(COCO: 4,919 images at full resolution, five categories) and ``valid.csv``/``test.csv``
(``id,file_name``) listing the images to predict.

The categories keep Kaggle's ids in every submission (87 belt, 131 boot, 318 cowboy_hat,
588 jacket, 1034 sunglasses); inside, labels are 0-4 in id order. The image ids are 64-bit
unsigned integers, beyond int64 (and float64's 53 bits): they are parsed from json and CSV as
Python ints and never enter numpy, pandas or a tensor. The classes are very imbalanced (belts
are rare): ``class_balanced: true`` draws images by their rarest class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datamodules.base import read_csv
from datamodules.detection import CocoDetection, DetectionDataset, DetectionRecord
from zoo.core.problems import Problems

#: the largest image id: the competition's ids are 64-bit unsigned integers
UINT64_MAX = 2**64 - 1
#: Kaggle's category ids and names, in id order: label k is the k-th
CATEGORIES = ((87, "belt"), (131, "boot"), (318, "cowboy_hat"), (588, "jacket"), (1034, "sunglasses"))


def read_image_list(csv: Path, images_dir: Path) -> list[DetectionRecord]:
    """``id,file_name`` rows (``valid.csv``, ``test.csv``) as records without boxes; ids as Python ints."""
    table = read_csv(csv, dtype=str, keep_default_na=False)
    problems = Problems()
    missing = [c for c in ("id", "file_name") if c not in table.columns]
    problems.add_each("missing column (expected id,file_name)", missing)
    problems.raise_if_any(str(csv))
    records, seen, root = [], set(), images_dir.resolve()
    for line, (raw_id, name) in enumerate(zip(table["id"], table["file_name"]), start=2):
        if not (raw_id.strip().isascii() and raw_id.strip().isdigit()):  # "²" is a digit to str.isdigit
            problems.add(f"line {line}: id {raw_id!r} is not a non-negative integer")
            continue
        image_id, path = int(raw_id), images_dir / name
        if image_id > UINT64_MAX:
            problems.add(f"line {line}: id {image_id} is above 2**64 - 1 (CowBoy ids are 64-bit unsigned)")
        elif image_id in seen:
            problems.add(f"line {line}: duplicate id {image_id}")
        elif "\0" in name:  # a NUL byte, which no file name holds (the OS refuses to look it up)
            problems.add(f"line {line}: file_name {name!r} holds a NUL byte")
        elif not path.resolve().is_relative_to(root):
            problems.add(f"line {line}: file_name {name!r} lies outside {images_dir} (refused)")
        elif not path.is_file():
            problems.add(f"line {line}: image {path} is missing")
        else:
            records.append(DetectionRecord(image_id, path))
        seen.add(image_id)
    problems.raise_if_any(str(csv))
    return records


class CowboyOutfits(CocoDetection):
    """CowBoy Outfits: ``train.json`` splits into training and validation (fold ``fold`` of
    ``folds_file``, as the competition saves it, or a seeded ``val_size`` split; the validation
    split also tests), and ``predict_csv`` lists the images ``predict_dataloader`` serves, their
    ids in ``predict_ids``. ``category_ids`` (state, saved in checkpoints) maps labels back.

    Args:
        predict_csv: ``valid.csv`` (the public leaderboard's images) or ``test.csv``.
        Others: see ``CocoDetection``; ``image_size: null`` keeps the photos' sizes for
        torchvision's detectors, which resize them themselves.
    """

    def __init__(self, data_dir: str = "data/cowboyoutfits", predict_csv: str = "valid.csv",
                 val_size: int | float = 0.2, seed: int = 0, fold: int | None = None,
                 folds_file: str | None = None, image_size: int | None = None, augment: str = "flip",
                 class_balanced: bool = False, cache: bool = False, batch_size: int = 4,
                 num_workers: int = 0, pin_memory: bool = False) -> None:  # fmt: skip
        super().__init__(data_dir, "train.json", "images", val_size, seed, fold, folds_file, image_size, augment,
                         class_balanced, cache, batch_size, num_workers, pin_memory)  # fmt: skip
        self.predict_csv = predict_csv
        self.category_ids = [cid for cid, _ in CATEGORIES]
        self.classes = [name for _, name in CATEGORIES]
        self.predict_ids: list[int] | None = None

    def setup(self, stage: str | None = None) -> None:
        if stage != "predict":
            super().setup(stage)
        if stage in (None, "predict"):
            records = read_image_list(self.data_dir / self.predict_csv, self.data_dir / self.images_dir)
            self._predict = DetectionDataset(records, self.image_size, "none")
            self.predict_ids = [r.image_id for r in records]

    def predict_dataloader(self) -> Any:
        return self.loader(self._predict)
