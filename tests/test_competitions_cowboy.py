"""CowBoy Outfits end to end on photos, a COCO ``train.json`` and the id CSVs written here in the
competition's layout, with 64-bit image ids beyond int64: prepare (folds by rarest category), fit
(CV mAP by fold), predict (a checked, zipped answer.json whose ids and category ids are Kaggle's,
exactly); bad input and bad submissions are refused, the previous submission kept."""

from __future__ import annotations

import json
import time
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml
from test_detection_data import draw, random_box

from competitions.__main__ import main
from competitions.cowboy import COMPETITION
from competitions.kit import DataError
from competitions.kit.submission import write_detections
from datamodules import CowboyOutfits
from datamodules.cowboy import CATEGORIES

BASE = 2**64 - 1000  # uint64 ids: every one overflows int64 and float64's 53-bit mantissa
CATEGORY_IDS = [cid for cid, _ in CATEGORIES]


def cowboy_layout(root, n_train=12, n_valid=3, n_test=2):
    """``images/``, ``train.json`` (image BASE + 11 without boxes; belts only on two images),
    ``valid.csv`` and ``test.csv``; photos of two sizes."""
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(n_train + n_valid + n_test):
        iid, size = BASE + i, ((96, 80), (80, 96))[i % 2]
        boxes = [random_box(rng, *size) for _ in range(i % 3)] if i < n_train - 1 else []
        draw(root / "images" / f"{iid}.jpg", size, boxes, seed=i)
        if i < n_train:
            images.append({"id": iid, "file_name": f"{iid}.jpg", "width": size[0], "height": size[1]})
        for x1, y1, x2, y2 in boxes:
            cat = 87 if i in (1, 5) else CATEGORY_IDS[1 + len(annotations) % 4]
            annotations.append({"id": 10 + len(annotations), "image_id": iid, "category_id": cat,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0})  # fmt: skip
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": c, "name": n} for c, n in CATEGORIES]}  # fmt: skip
    (root / "train.json").write_text(json.dumps(coco))
    valid = range(BASE + n_train, BASE + n_train + n_valid)
    test = range(BASE + n_train + n_valid, BASE + n_train + n_valid + n_test)
    (root / "valid.csv").write_text("id,file_name\n" + "".join(f"{i},{i}.jpg\n" for i in valid))
    (root / "test.csv").write_text("id,file_name\n" + "".join(f"{i},{i}.jpg\n" for i in test))
    return coco, list(valid)


def tiny_config(tmp_path) -> str:
    """The competition's recipe, shrunk: TinySSD at 64 pixels, 2 folds, one epoch."""
    cfg = yaml.safe_load(open("competitions/cowboy/config.yaml"))
    cfg["cv"].update(folds=2)
    cfg["fit"]["trainer"].update(max_epochs=1, enable_model_summary=False)
    cfg["fit"]["model"]["init_args"] = {"arch": "tiny_ssd", "lr": 0.1}
    cfg["fit"]["data"]["init_args"].update(image_size=64, batch_size=4, num_workers=0)
    path = tmp_path / "cowboy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_cowboy_end_to_end_keeps_64_bit_ids_and_kaggle_categories(tmp_path, capsys):
    data, work = tmp_path / "data", tmp_path / "work"
    coco, valid_ids = cowboy_layout(data)
    config = tiny_config(tmp_path)
    times = {}
    for stage in ("prepare", "fit", "predict"):
        start = time.perf_counter()
        result = main(["cowboy", stage, "--data_dir", str(data), "--work_dir", str(work), "--config", config])
        times[stage] = time.perf_counter() - start
    print(f"cowboy stages on the fixture: {', '.join(f'{k} {v:.1f} s' for k, v in times.items())}")
    folds = pd.read_csv(work / "folds.csv", dtype={"id": str})
    assert sorted(int(i) for i in folds["id"]) == [BASE + i for i in range(12)]  # no id lost to int64/float64
    belt_images = {str(BASE + 1), str(BASE + 5)}
    assert folds[folds["id"].isin(belt_images)]["fold"].nunique() == 2  # stratified: one belt image a fold
    cv = json.loads((work / "cv.json").read_text())
    assert [f["fold"] for f in cv["folds"]] == [0, 1] and all(0 <= f["score"] <= 1 for f in cv["folds"])
    scores = pd.read_csv(work / "scores.csv")
    assert scores["stage"].tolist() == ["fit", "predict"] and len(str(scores["fold_scores"][0]).split()) == 2

    with zipfile.ZipFile(result) as z:
        assert z.namelist() == ["answer.json"]
        answer = json.loads(z.read("answer.json"))
    assert answer, "an untrained TinySSD still scores some boxes above the task's 0.01"
    assert {r["image_id"] for r in answer} <= set(valid_ids) and all(type(r["image_id"]) is int for r in answer)
    assert {r["category_id"] for r in answer} <= set(CATEGORY_IDS)
    for r in answer:
        x, y, w, h = r["bbox"]
        width, height = ((96, 80), (80, 96))[(r["image_id"] - BASE) % 2]  # the photo's own pixels
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= width + 0.01 and y + h <= height + 0.01
        assert 0 <= r["score"] <= 1

    # a bad submission is refused and the previous one kept
    before = result.read_bytes()
    bad = [{"image_id": BASE + 1, "category_id": 2, "bbox": [1, 2, 0, 4], "score": 1.5}]
    with pytest.raises(DataError) as err:
        write_detections(bad, result, valid_ids, CATEGORY_IDS)
    text = str(err.value)
    assert "image_id is not a test image: 0 (18446744073709550617)" in text and "category_id is not one of" in text
    assert "bbox is not [x, y, w, h] with w, h > 0: 0" in text and "score is not in [0, 1]: 0" in text
    assert result.read_bytes() == before


def test_cowboy_data_module_and_bad_input(tmp_path):
    data = tmp_path / "data"
    coco, valid_ids = cowboy_layout(data)
    dm = CowboyOutfits(str(data), image_size=64, val_size=3)
    assert dm.num_classes == 5 and dm.classes == ["belt", "boot", "cowboy_hat", "jacket", "sunglasses"]
    dm.setup()
    assert dm.predict_ids == valid_ids and dm.category_ids == [87, 131, 318, 588, 1034]
    images, targets = next(iter(dm.predict_dataloader()))
    assert images.shape == (3, 3, 64, 64) and [t["size"].tolist() for t in targets] == [[80, 96], [96, 80], [80, 96]]

    coco["annotations"][0]["category_id"] = 5  # not a CowBoy category
    coco["annotations"][1]["image_id"] = BASE + 999
    (data / "train.json").write_text(json.dumps(coco))
    (data / "valid.csv").write_text(f"id,file_name\n{BASE + 12},{BASE + 12}.jpg\nabc,x.jpg\n")
    (data / "images" / f"{BASE + 13}.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    with pytest.raises(DataError) as err:
        COMPETITION.prepare(data, tmp_path / "work", {})
    first = coco["annotations"][0]["id"]
    assert f"annotation {first}: unknown category_id 5 (expected one of [87, 131, 318, 588, 1034])" in str(err.value)
    assert f"image_id {BASE + 999} is not in images" in str(err.value)
    coco["annotations"][0]["category_id"], coco["annotations"][1]["image_id"] = 87, coco["images"][1]["id"]
    (data / "train.json").write_text(json.dumps(coco))
    with pytest.raises(DataError, match="line 3: id 'abc' is not a non-negative integer"):
        COMPETITION.prepare(data, tmp_path / "work", {})
    (data / "valid.csv").write_text(f"id,file_name\n{BASE + 13},{BASE + 13}.jpg\n")
    with pytest.raises(DataError, match=f"images that do not decode: {BASE + 13}.jpg"):
        COMPETITION.prepare(data, tmp_path / "work", {})
