"""Kaggle "CowBoy Outfits Detection" (the course's lectures 50 and 71): find belts, boots, cowboy
hats, jackets and sunglasses in photos.

Raw files: ``images/``, ``train.json`` (COCO), ``valid.csv`` and ``test.csv`` (``id,file_name``),
read by ``datamodules.cowboy``; the folds train ``datamodules.CowboyOutfits``. Metric: COCO mAP
(mAP@[.5:.95]); a fold's score is ``test/map``, the mAP of its model on its held-out images.
Submission: ``answer.json``, a JSON list of ``{image_id, category_id, bbox: [x, y, w, h] pixels,
score}`` with Kaggle's category ids, zipped, checked before it replaces the previous one. Image
ids are 64-bit unsigned integers: they stay Python ints from the json and CSVs to the answer.
Folds are stratified by each image's rarest category (belts are rare).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from competitions.kit import Competition, Prepared
from competitions.kit.scorelog import append_score
from competitions.kit.submission import write_detections
from datamodules.cowboy import CATEGORIES, read_image_list
from datamodules.detection import rarest_labels, read_coco
from datamodules.kaggle_images import bad_images
from zoo.core.errors import ConfigError
from zoo.core.problems import Problems

NO_BOXES = "none"


class CowboyOutfits(Competition):
    slug = "cowboyoutfits"
    metric = "mAP@[.5:.95]"
    score_key = "test/map"
    files = {"train": ("train.json",), "valid": ("valid.csv",), "test": ("test.csv",)}
    folders = ("images",)
    sample_names = ("sample_submission.json",)  # Kaggle ships none: the check is against the csv's ids
    header = ["image_id", "category_id", "bbox", "score"]  # the keys of each answer.json record

    def read(self, data_dir: Path, found: dict[str, Path], sample: Path | None) -> Prepared:
        coco = read_coco(found["train"], data_dir / "images", CATEGORIES)
        valid = read_image_list(found["valid"], data_dir / "images")
        test = read_image_list(found["test"], data_dir / "images")
        problems = Problems()
        problems.add_each("images that do not decode", bad_images([r.path for r in coco.records + valid + test]))
        problems.raise_if_any(str(data_dir))
        counts = Counter(label for r in coco.records for label in r.labels)
        names = [name for _, name in CATEGORIES]
        # the stratum of an image is its rarest category, so every fold gets its share of belts
        rarest = [names[k] if k >= 0 else NO_BOXES for k in rarest_labels(coco.records)]
        train = pd.DataFrame({"id": [str(r.image_id) for r in coco.records], "label": rarest,
                              "path": [str(r.path) for r in coco.records]})  # fmt: skip
        notes = [f"{counts[k]} {name} boxes" for k, name in enumerate(names)]
        return Prepared(train, self._test_table(valid), self.header, names, [", ".join(notes)])

    @staticmethod
    def _test_table(records: list) -> pd.DataFrame:
        return pd.DataFrame({"id": [str(r.image_id) for r in records], "path": [str(r.path) for r in records]})

    def predict(self, work_dir: str | Path, config: dict[str, Any], config_path: str,
                tta: bool | None = None, output: str | Path | None = None) -> Path:  # fmt: skip
        """Every fold's detections on ``predict.csv`` (``valid.csv`` by default: the public
        leaderboard's images), merged by per-class NMS, as a checked, zipped ``answer.json``."""
        from competitions.kit.predict import predict_detection_folds  # here: torch, only for predict

        work_dir = Path(work_dir)
        if tta:
            raise ConfigError("cowboy: flip TTA is not implemented for detection; predict with --no-tta")
        info, cv_result = self.fitted(work_dir, output)
        start = time.perf_counter()
        settings = config.get("predict", {})
        ids, dets, category_ids = predict_detection_folds([f["checkpoint"] for f in cv_result["folds"]],
                                                          settings.get("nms_threshold", 0.5),
                                                          settings.get("max_detections", 100))  # fmt: skip
        csv = Path(info["data_dir"]) / settings.get("csv", "valid.csv")
        expected = [r.image_id for r in read_image_list(csv, Path(info["data_dir"]) / "images")]
        if ids != expected:
            raise ConfigError(f"the folds' data modules predicted other images than {csv}; set predict.csv "
                             "to the data module's predict_csv")  # fmt: skip
        records = [{"image_id": image_id, "category_id": category_ids[int(label)],
                    "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                    "score": round(float(score), 5)}
                   for image_id, d in zip(ids, dets, strict=True)
                   for (x1, y1, x2, y2), score, label in zip(d["boxes"].tolist(), d["scores"], d["labels"])
                   if x2 - x1 >= 0.01 and y2 - y1 >= 0.01]  # fmt: skip
        path = write_detections(records, output or work_dir / "submission.zip", expected, category_ids)
        append_score(work_dir / "scores.csv", competition=self.slug, stage="predict", metric=self.metric,
                     cv_score=f"{cv_result['cv_score']:.5f}", wall_seconds=round(time.perf_counter() - start, 1),
                     config=f"{config_path}", overrides=f"{len(records)} boxes on {len(ids)} images",
                     output=str(path))  # fmt: skip
        return path


COMPETITION = CowboyOutfits()
