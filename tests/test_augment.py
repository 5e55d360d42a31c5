"""Augmentation pipelines and the generic image dataset: shapes, RGB decoding, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from datamodules.augment import PIPELINES, build
from datamodules.image_folder import NO_LABEL, ImageFiles, list_images, read_rgb


def _images(n: int, size: int = 32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pipeline_shape_and_dtype(name: str) -> None:
    t = build(name, 24, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), seed=0)
    x = t(image=_images(1, 40)[0])["image"]
    assert x.shape == (3, 24, 24) and x.dtype == torch.float32 and torch.isfinite(x).all()


def test_normalisation_values() -> None:
    img = np.full((8, 8, 3), 255, np.uint8)
    assert torch.allclose(build("none")(image=img)["image"], torch.ones(3, 8, 8))
    x = build("none", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))(image=img)["image"]
    assert torch.allclose(x, torch.full((3, 8, 8), 2.0))


def test_same_seed_same_stream_other_seed_differs() -> None:
    imgs = _images(8)

    def run(seed: int) -> torch.Tensor:
        t = build("course", 32, seed=seed)
        return torch.stack([t(image=im)["image"] for im in imgs])

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_unknown_pipeline_and_missing_size() -> None:
    with pytest.raises(ValueError, match="unknown augmentation 'flipp'"):
        build("flipp", 32)
    with pytest.raises(ValueError, match="needs an image size"):
        build("cifar", None)


def _loader_pass(ds: ImageFiles, workers: int, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)  # what seed_everything does for the loader's base seed
    loader = DataLoader(ds, batch_size=4, num_workers=workers)
    return torch.cat([x for x, _ in loader])


def test_workers_get_distinct_reproducible_streams() -> None:
    # the same image 8 times: with one shared stream both workers would crop alike
    ds = ImageFiles([_images(1)[0]] * 8, [0] * 8, transform=build("course", 32, seed=0))
    a = _loader_pass(ds, 2, seed=1)
    b = _loader_pass(ds, 2, seed=1)
    assert torch.equal(a, b), "same seed must give the same augmented batches"
    assert not torch.equal(a[:4], a[4:]), "the two workers must not repeat one augmentation stream"
    assert not torch.equal(a, _loader_pass(ds, 2, seed=2))


def test_image_files_decode_rgb_and_labels(tmp_path) -> None:
    red = np.zeros((6, 5, 3), np.uint8)
    red[..., 0] = 255
    Image.fromarray(red).save(tmp_path / "10.png")
    Image.fromarray(np.full((6, 5), 128, np.uint8)).save(tmp_path / "2.jpg")  # grey JPEG
    (tmp_path / "notes.txt").write_text("not an image")
    files = list_images(tmp_path)
    assert [p.name for p in files] == ["2.jpg", "10.png"]  # numeric, not lexical, order
    assert read_rgb(files[0]).shape == (6, 5, 3)
    for cache in (False, True):
        ds = ImageFiles(files, [3, 7], cache=cache)
        x, y = ds[1]
        assert x.shape == (3, 6, 5) and y == 7
        assert torch.equal(x[0], torch.ones(6, 5)) and x[1:].abs().max() == 0  # red stays red
    x, y = ImageFiles(files)[0]
    assert y == NO_LABEL and x.shape == (3, 6, 5)


def test_bad_inputs_name_the_problem(tmp_path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="broken.png: not a readable image"):
        ImageFiles([bad], [0])[0]
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        ImageFiles([bad, bad], [0])


def test_show_augment_writes_a_grid(tmp_path) -> None:
    from zoo.cli.show_augment import main

    (tmp_path / "train").mkdir()
    for i in range(1, 5):
        Image.fromarray(_images(1, seed=i)[0]).save(tmp_path / "train" / f"{i}.png")
    (tmp_path / "trainLabels.csv").write_text("id,label\n1,cat\n2,dog\n3,ship\n4,frog\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data:\n  class_path: datamodules.CIFAR10\n  init_args: {val_size: 1, download: no}\n")
    out = main(["--config", str(recipe), "--data_dir", str(tmp_path), "--out", str(tmp_path / "g.png"),
                "--images", "2", "--draws", "3", "--augment", "course"])  # fmt: skip
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 + 2 * 34, 2 + 3 * 34, 3)  # 32-pixel tiles, 2-pixel padding
    tiles = [grid[2:34, 2 + 34 * j : 34 + 34 * j] for j in range(3)]
    assert not np.array_equal(tiles[0], tiles[1]), "each column must be another augmentation draw"
