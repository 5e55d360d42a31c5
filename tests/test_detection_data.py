"""Detection data read from files in their real layouts (YOLO txt, COCO json, the course's banana
CSV) written here: boxes in pixels, images without boxes, augmentations that move the boxes with
the image, class-balanced sampling, and every kind of bad input named with its file and line or id."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules import Bananas, CocoDetection, YoloDetection
from datamodules.detection import DetectionDataset, DetectionRecord, balanced_sampler, collate
from zoo.core.problems import DataError

BIG_ID = 2**63 + 12345  # a CowBoy-style image id: over int64's range


def draw(path: Path, size: tuple[int, int], boxes: list[list[float]], seed: int = 0) -> Path:
    """A noisy dark image with a bright rectangle on each ``xyxy`` box (the object to find)."""
    w, h = size
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    for x1, y1, x2, y2 in boxes:
        pixels[int(y1) : int(y2), int(x1) : int(x2)] = (230, 200, 40)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def random_box(rng: np.random.Generator, w: int, h: int) -> list[float]:
    bw, bh = rng.integers(w // 4, w // 2), rng.integers(h // 4, h // 2)
    x, y = rng.integers(0, w - bw), rng.integers(0, h - bh)
    return [float(x), float(y), float(x + bw), float(y + bh)]


def write_yolo(root: Path, n: dict[str, int] | None = None, size: int = 96, names: tuple[str, ...] = ("banana",),
               seed: int = 0) -> Path:  # fmt: skip
    """A YOLO export: ``data.yaml`` and ``{split}/{images,labels}``, one box an image."""
    rng = np.random.default_rng(seed)
    (root).mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(f"nc: {len(names)}\nnames: {list(names)}\n")
    for split, count in (n or {"train": 12, "valid": 4, "test": 4}).items():
        for i in range(count):
            box = random_box(rng, size, size)
            draw(root / split / "images" / f"img_{i}.jpg", (size, size), [box], seed=i)
            cx, cy = (box[0] + box[2]) / 2 / size, (box[1] + box[3]) / 2 / size
            w, h = (box[2] - box[0]) / size, (box[3] - box[1]) / size
            label = root / split / "labels" / f"img_{i}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(f"{i % len(names)} {cx} {cy} {w} {h}")  # no trailing newline, as Roboflow's
    return root


def write_coco(root: Path, n: int = 10, size: tuple[int, int] = (96, 80), categories=((87, "belt"), (318, "hat")),
               first_id: int = BIG_ID, empty: int = 1) -> tuple[Path, dict]:  # fmt: skip
    """``train.json`` (COCO) and ``images/``; the last ``empty`` images have no boxes."""
    rng = np.random.default_rng(1)
    images, annotations = [], []
    for i in range(n):
        iid = first_id + i
        boxes = [] if i >= n - empty else [random_box(rng, *size) for _ in range(1 + i % 2)]
        draw(root / "images" / f"{iid}.jpg", size, boxes, seed=i)
        images.append({"id": iid, "file_name": f"{iid}.jpg", "width": size[0], "height": size[1]})
        for x1, y1, x2, y2 in boxes:
            annotations.append({"id": len(annotations) + 1, "image_id": iid, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "category_id": categories[len(annotations) % len(categories)][0],
                                "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})  # fmt: skip
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": cid, "name": name} for cid, name in categories]}  # fmt: skip
    (root / "train.json").write_text(json.dumps(coco))
    return root, coco


def test_yolo_boxes_in_pixels_and_an_image_without_boxes(tmp_path):
    root = write_yolo(tmp_path / "yolo", {"train": 6, "valid": 3})
    (root / "train/labels/img_5.txt").unlink()  # no label file: an image without boxes (valid)
    (root / "train/labels/img_4.txt").write_text("")
    dm = YoloDetection(str(root), image_size=64, batch_size=6)
    assert dm.num_classes == 1 and dm.classes == ["banana"]
    dm.setup("fit")
    assert dm._test is dm._val  # no test/ folder: the validation split tests
    rec = dm._train.records[0]
    line = (root / "train/labels/img_0.txt").read_text().split()
    cx, w = float(line[1]) * 96, float(line[3]) * 96
    assert rec.boxes[0][0] == pytest.approx(cx - w / 2) and rec.boxes[0][2] == pytest.approx(cx + w / 2)
    images, targets = next(iter(dm.val_dataloader()))
    assert images.shape == (3, 3, 64, 64) and images.dtype == torch.float32 and 0 <= images.min() <= images.max() <= 1
    images, targets = collate([dm._train[i] for i in range(6)])
    assert [len(t["boxes"]) for t in targets] == [1, 1, 1, 1, 0, 0]  # a list: no padding rows
    assert targets[0]["boxes"][0].tolist() == pytest.approx([v * 64 / 96 for v in rec.boxes[0]], abs=1e-4)
    assert targets[4]["boxes"].shape == (0, 4) and targets[4]["labels"].dtype == torch.int64
    assert targets[0]["size"].tolist() == [96, 96]


@pytest.mark.parametrize("augment", ["flip", "jitter", "ssd"])
def test_augmentations_move_the_boxes_with_the_image(tmp_path, augment):
    boxes = [[10.0, 20.0, 50.0, 44.0], [60.0, 50.0, 90.0, 90.0]]
    path = draw(tmp_path / "a.png", (100, 96), boxes)
    data = DetectionDataset([DetectionRecord(1, path, boxes, [0, 1])], image_size=64, augment=augment)
    torch.manual_seed(0)
    moved = 0
    for _ in range(12):
        image, target = data[0]
        assert image.shape == (3, 64, 64)
        assert len(target["boxes"]) == len(target["labels"]) and set(target["labels"].tolist()) <= {0, 1}
        for x1, y1, x2, y2 in target["boxes"].round().int().tolist():
            inner = image[:, y1 + 1 : y2 - 1, x1 + 1 : x2 - 1]
            if inner.numel():  # the bright object lies under its (moved) box
                assert inner[0].mean() > 0.7, (augment, target["boxes"])
        moved += not torch.allclose(target["boxes"][:1], data.load(0)[1][:1].float())
    assert moved  # the boxes did move in some draws


def test_coco_keeps_64_bit_ids_and_maps_categories(tmp_path):
    root, coco = write_coco(tmp_path / "coco", n=10)
    dm = CocoDetection(str(root), image_size=64, val_size=3, batch_size=4)
    assert dm.num_classes == 2 and dm.classes == ["belt", "hat"] and dm.category_ids == [87, 318]
    dm.setup("fit")
    records = dm._train.records + dm._val.records
    assert sorted(r.image_id for r in records) == [BIG_ID + i for i in range(10)]  # exact Python ints
    assert all(type(r.image_id) is int for r in records)
    by_id = {r.image_id: r for r in records}
    first = coco["annotations"][0]
    x, y, w, h = first["bbox"]
    assert by_id[first["image_id"]].boxes[0] == pytest.approx([x, y, x + w, y + h])
    assert by_id[first["image_id"]].labels[0] == 0 and len(by_id[BIG_ID + 9].boxes) == 0
    state = dm.state_dict()
    again = CocoDetection(str(root))
    again.load_state_dict(state)
    assert again.category_ids == [87, 318] and again.classes == ["belt", "hat"]


def test_coco_folds_hold_out_their_images(tmp_path):
    """A COCO set is foldable data: its image ids, stratified by each image's rarest category,
    and a saved fold held out for validation."""
    root, _ = write_coco(tmp_path / "coco", n=6)
    ids, strata = CocoDetection(str(root)).fold_rows()
    assert ids == [str(BIG_ID + i) for i in range(6)] and strata[-1] == -1  # the last image has no boxes
    folds = tmp_path / "folds.csv"
    folds.write_text("id,fold\n" + "".join(f"{i},{k % 2}\n" for k, i in enumerate(ids)))
    dm = CocoDetection(str(root), fold=1, folds_file=str(folds), image_size=64)
    dm.setup("fit")
    assert [r.image_id for r in dm._val.records] == [BIG_ID + 1, BIG_ID + 3, BIG_ID + 5]


def test_banana_csv_layout(tmp_path):
    for split, n in (("bananas_train", 5), ("bananas_val", 2)):
        rows = ["img_name,label,xmin,ymin,xmax,ymax"]
        for i in range(n):
            draw(tmp_path / split / "images" / f"{i}.png", (64, 64), [[4, 8, 30 + i, 40]])
            rows.append(f"{i}.png,0,4,8,{30 + i},40")
        (tmp_path / split / "label.csv").write_text("\n".join(rows) + "\n")
    dm = Bananas(str(tmp_path), image_size=64)
    assert dm.num_classes == 1
    dm.setup("fit")
    assert len(dm._train) == 5 and len(dm._val) == 2 and dm._test is dm._val
    assert dm._train.records[2].boxes == [[4.0, 8.0, 32.0, 40.0]]
    with open(tmp_path / "bananas_val/label.csv", "a") as f:
        f.write("1.png,0,50,8,40,40\n")  # line 4: xmax < xmin
    with pytest.raises(DataError, match=r"bananas_val/label.csv line 4: box .* non-positive size"):
        Bananas(str(tmp_path)).setup("fit")


def test_bad_yolo_files_are_named_by_file_and_line(tmp_path):
    root = write_yolo(tmp_path / "yolo", {"train": 4, "valid": 2})
    (root / "train/labels/img_1.txt").write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n")
    (root / "train/labels/img_2.txt").write_text("0 0.9 0.5 0.5 0.2")  # x from 0.65 to 1.15
    (root / "train/labels/img_3.txt").write_text("3 0.5 0.5 0.2 0.2")
    (root / "train/images/img_0.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError) as err:
        YoloDetection(str(root)).setup("fit")
    text = str(err.value)
    assert "img_1.txt line 2: expected 5 fields (class cx cy w h), got 4" in text
    assert "img_2.txt line 1: box" in text and "outside its 96x96 image" in text
    assert "img_3.txt line 1: class 3 is not one of the 1 in data.yaml" in text
    assert "img_0.jpg: not a readable image" in text


def test_bad_coco_annotations_are_named_by_id(tmp_path):
    root, coco = write_coco(tmp_path / "coco", n=5, empty=0)
    anns = coco["annotations"]
    anns[0]["category_id"] = 999
    anns[1]["image_id"] = 42
    anns[2]["bbox"] = [10, 10, 0, 5]
    anns[3]["bbox"] = [80, 10, 40, 20]  # to x = 120 in a 96-wide image
    (root / "train.json").write_text(json.dumps(coco))
    (root / "images" / f"{BIG_ID + 4}.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(DataError) as err:
        CocoDetection(str(root)).setup("fit")
    text = str(err.value)
    assert f"annotation {anns[0]['id']}: unknown category_id 999 (expected one of [87, 318])" in text
    assert f"annotation {anns[1]['id']}: image_id 42 is not in images" in text
    assert f"annotation {anns[2]['id']}: box [10.0, 10.0, 10.0, 15.0] has non-positive size" in text
    assert f"annotation {anns[3]['id']}: box" in text and "outside its 96x80 image" in text
    assert f"image {BIG_ID + 4}: " in text and "not a readable image" in text
    assert "train.json" in text


def test_a_missing_layout_names_what_it_needs(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"YOLO detection set not found: need data.yaml"):
        YoloDetection(str(tmp_path)).setup("fit")
    root = write_yolo(tmp_path / "yolo", {"train": 2, "valid": 1})
    given = YoloDetection(str(root), classes=["apple", "pear"])
    assert given.num_classes == 2  # stated by the recipe: nothing read yet
    with pytest.raises(DataError, match=r"the data's classes \['banana'\] differ from the given ones"):
        given.setup("fit")
    with pytest.raises(ValueError, match="unknown detection augmentation 'mixup'"):
        YoloDetection(str(tmp_path), augment="mixup")


def test_class_balanced_sampling_draws_the_rare_class_as_often(tmp_path):
    records = [DetectionRecord(i, tmp_path, [[0, 0, 1, 1]], [0 if i < 18 else 1]) for i in range(20)]
    records.append(DetectionRecord(20, tmp_path))  # no boxes
    drawn = Counter(records[i].labels[0] if records[i].labels else -1 for i in balanced_sampler(records, seed=0))
    assert sum(drawn.values()) == 21
    plain = Counter(r.labels[0] if r.labels else -1 for r in records)
    assert plain[1] / 21 < 0.1 and drawn[1] / 21 > 0.25  # 2 of 21 images, drawn about half the time


def test_show_augment_draws_the_boxes(tmp_path):
    from zoo.cli.show_augment import main

    root = write_yolo(tmp_path / "yolo", {"train": 2, "valid": 1})
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"data:\n  class_path: datamodules.YoloDetection\n  init_args: {{data_dir: {root}, image_size: 64}}\n"
    )
    out = main(
        ["--config", str(recipe), "--augment", "ssd", "--images", "2", "--draws", "2", "--out", str(tmp_path / "a.png")]
    )
    pixels = np.array(Image.open(out).convert("RGB")).reshape(-1, 3).astype(int)
    assert ((pixels[:, 0] > 240) & (pixels[:, 1] > 240) & (pixels[:, 2] < 30)).sum() > 100  # yellow box edges
