"""Segmentation data read from files written in the real layouts: VOC2012's palette PNG masks
with 255 boundaries and its ImageSets lists, and the images + index masks folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules import SegmentationFolder, VOCSegmentation
from datamodules.voc import IMAGENET_MEAN, IMAGENET_STD, read_mask, voc_palette
from zoo.core.problems import DataError

# the course's VOC_COLORMAP, first entries
COURSE_COLORMAP = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128)]


def palette_png(path: Path, mask: np.ndarray) -> Path:
    """A palette PNG as VOC's are: index = class, VOC's colours, 255 a light boundary colour."""
    im = Image.fromarray(mask.astype(np.uint8), mode="P")
    flat = [0] * 768
    for i, rgb in enumerate(COURSE_COLORMAP):
        flat[3 * i : 3 * i + 3] = rgb
    flat[765:768] = (224, 224, 192)
    im.putpalette(flat)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def object_mask(h: int, w: int, label: int, top: int, left: int, size: int) -> np.ndarray:
    """Background with a ``size`` square of ``label``, outlined with a 1-pixel 255 band, as VOC."""
    m = np.zeros((h, w), np.uint8)
    m[top - 1 : top + size + 1, left - 1 : left + size + 1] = 255
    m[top : top + size, left : left + size] = label
    return m


def write_voc(root: Path, sizes: dict[str, list[tuple[int, int]]], colour=(200, 40, 90)) -> Path:
    """``root/VOCdevkit/VOC2012`` with flat-coloured JPEGs, palette masks and the split lists."""
    voc = root / "VOCdevkit" / "VOC2012"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    for split, shapes in sizes.items():
        ids = [f"2007_{split}{i:03d}" for i in range(len(shapes))]
        for name, (h, w) in zip(ids, shapes, strict=True):
            Image.new("RGB", (w, h), colour).save(voc / "JPEGImages" / f"{name}.jpg", quality=100)
            palette_png(voc / "SegmentationClass" / f"{name}.png", object_mask(h, w, 1 + len(name) % 3, 4, 5, 6))
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return voc


def test_palette_masks_read_as_class_indices_with_255_kept(tmp_path):
    mask = object_mask(12, 16, 3, 3, 4, 5)
    path = palette_png(tmp_path / "m.png", mask)
    assert Image.open(path).mode == "P"
    got = read_mask(path, num_classes=21)
    assert got.dtype == np.uint8 and np.array_equal(got, mask)  # indices, not colours
    assert set(np.unique(got)) == {0, 3, 255}
    assert [tuple(voc_palette()[3 * i : 3 * i + 3]) for i in range(6)] == COURSE_COLORMAP


def test_bad_masks_name_the_file(tmp_path):
    Image.new("RGB", (8, 8), (128, 0, 0)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"rgb\.png: a RGB image; expected a palette \(P\)"):
        read_mask(tmp_path / "rgb.png")
    palette_png(tmp_path / "big.png", np.full((4, 4), 7))
    with pytest.raises(DataError, match=r"big\.png: class indices \[7\] outside 0\.\.4"):
        read_mask(tmp_path / "big.png", num_classes=5)


def test_voc_layout_drops_small_training_images_and_validates_whole(tmp_path, capsys):
    write_voc(tmp_path, {"train": [(40, 50), (30, 60), (48, 64)], "val": [(20, 30), (25, 27)]})
    dm = VOCSegmentation(data_dir=str(tmp_path), crop_size=(32, 48), download=False, batch_size=2,
                         classes=["background", "a", "b", "c"])  # fmt: skip
    assert dm.num_classes == 4
    dm.setup()
    assert dm.dropped == 1 and len(dm._train) == 2  # 30x60 is lower than the 32-row crop
    assert "2 training images; 1 smaller than 32x48 dropped" in capsys.readouterr().err
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 3, 32, 48) and y.shape == (2, 32, 48) and y.dtype == torch.long
    # validation: whole images one at a time, masks exactly as written (255 kept), ImageNet-normalised
    batches = list(dm.val_dataloader())
    assert [tuple(b[1].shape) for b in batches] == [(1, 20, 30), (1, 25, 27)]
    written = read_mask(tmp_path / "VOCdevkit/VOC2012/SegmentationClass/2007_val000.png")
    assert np.array_equal(batches[0][1][0].numpy(), written) and (written == 255).any()
    expected = (torch.tensor((200, 40, 90)) / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(batches[0][0][0, :, 10, 15], expected, atol=0.05)


def test_voc_fixed_centre_crop_and_the_folder_itself(tmp_path):
    voc = write_voc(tmp_path, {"train": [(40, 50)], "val": [(20, 30)]})
    dm = VOCSegmentation(data_dir=str(voc), crop_size=None, eval_crop=(16, 24), download=False)
    dm.setup()
    first, second = (next(iter(dm.val_dataloader())) for _ in range(2))
    assert first[1].shape == (1, 16, 24) and torch.equal(first[1], second[1]) and torch.equal(first[0], second[0])
    whole = torch.from_numpy(read_mask(voc / "SegmentationClass" / "2007_val000.png"))
    assert torch.equal(first[1][0], whole[2:18, 3:27].long())  # the centre, every time


def test_voc_missing_files_and_download_off(tmp_path):
    voc = write_voc(tmp_path, {"train": [(40, 50)], "val": [(40, 50)]})
    (voc / "SegmentationClass" / "2007_val000.png").unlink()
    dm = VOCSegmentation(data_dir=str(tmp_path), download=False, crop_size=None)
    with pytest.raises(DataError, match=r"masks listed in .*val\.txt missing in .*: 2007_val000\.png"):
        dm.setup()
    with pytest.raises(FileNotFoundError, match=r"VOC2012 not found: .*download=False.*VOCtrainval_11-May-2012"):
        VOCSegmentation(data_dir=str(tmp_path / "empty"), download=False).prepare_data()


def test_joint_random_crops_keep_image_and_mask_aligned(tmp_path):
    """Every pixel's colour encodes its place; the mask's class is a function of that place, and
    one known pixel (row 17, column 29) is 255: a crop that moved one without the other shows."""
    h, w = 40, 56
    rows, cols = np.mgrid[0:h, 0:w]
    image = np.stack([rows * 5, cols * 4, np.full((h, w), 7)], -1).astype(np.uint8)
    mask = ((rows // 4 + cols // 3) % 3).astype(np.uint8)
    mask[17, 29] = 255
    (tmp_path / "images").mkdir()
    Image.fromarray(image).save(tmp_path / "images" / "a.png")  # lossless
    palette_png(tmp_path / "masks" / "a.png", mask)
    (tmp_path / "classes.txt").write_text("zero\none\ntwo\n")
    (tmp_path / "images" / "b.png").write_bytes((tmp_path / "images" / "a.png").read_bytes())
    palette_png(tmp_path / "masks" / "b.png", mask)
    dm = SegmentationFolder(data_dir=str(tmp_path), val_size=1, crop_size=(24, 32), mean=None, std=None)
    assert dm.classes == ["zero", "one", "two"]
    dm.setup()
    seen = set()
    for _ in range(12):
        x, y = dm._train[0]
        r, c = (x[0] * 255 / 5).round().long(), (x[1] * 255 / 4).round().long()  # each pixel's origin
        expected = torch.from_numpy(mask.astype(np.int64))[r, c]
        assert torch.equal(y, expected)
        seen.add((int(r[0, 0]), int(c[0, 0])))
        if (y == 255).any():
            at = (y == 255).nonzero()[0]
            assert (int(r[at[0], at[1]]), int(c[at[0], at[1]])) == (17, 29)
    assert len(seen) > 3  # the crops are random


def test_every_bad_mask_is_named_in_setup_before_any_batch(tmp_path):
    """An RGB mask, a mask of the wrong size, one with a class index past the classes and a
    truncated one: setup names all four in one error (a batch drawing one would stop mid-epoch)."""
    voc = write_voc(tmp_path, {"train": [(40, 50)] * 5, "val": [(40, 50)]})
    masks = voc / "SegmentationClass"
    Image.new("RGB", (50, 40), (128, 0, 0)).save(masks / "2007_train001.png")
    palette_png(masks / "2007_train002.png", np.zeros((40, 48)))
    palette_png(masks / "2007_train003.png", np.full((40, 50), 9))
    whole = (masks / "2007_train004.png").read_bytes()
    (masks / "2007_train004.png").write_bytes(whole[: len(whole) // 2])
    dm = VOCSegmentation(data_dir=str(tmp_path), download=False, crop_size=None, classes=["bg", "a", "b", "c"])
    with pytest.raises(DataError) as e:
        dm.setup()
    text = str(e.value)
    assert text.startswith(f"4 problems in {masks}:")
    assert "unreadable: 2007_train004.png (not a readable image" in text
    assert "not palette (P) or greyscale (L) PNGs of class indices: 2007_train001.png (RGB)" in text
    assert "size is not their image's: 2007_train002.png (48x40, its image 50x40)" in text
    assert "outside the class indices 0..3 (and 255: ignored): 2007_train003.png (9)" in text
    assert "2007_train000" not in text and "2007_val000" not in text  # the good masks pass
