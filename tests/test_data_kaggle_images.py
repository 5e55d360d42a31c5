"""Leaves and DogBreeds data modules on small files in the Kaggle layouts: read as they lie,
seeded split or a saved fold, class names in the checkpoint state, bad rows named; and
``zoo.fit`` trains on them by class path alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from datamodules import DogBreeds, Leaves
from zoo.core.problems import DataError

SPECIES = ["quercus_alba", "acer_rubrum", "ulmus_rubra"]


def _image(path, seed, size=20):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def leaves(root, n=12):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n + 3):
        _image(root / "images" / f"{i}.jpg", i)
    pd.DataFrame({"image": [f"images/{i}.jpg" for i in range(n)],
                  "label": [SPECIES[i % 3] for i in range(n)]}).to_csv(root / "train.csv", index=False)  # fmt: skip
    pd.DataFrame({"image": [f"images/{i}.jpg" for i in range(n, n + 3)]}).to_csv(root / "test.csv", index=False)
    return root


def dogs(root):
    root.mkdir(parents=True, exist_ok=True)
    breeds = ["whippet", "beagle", "affenpinscher"]  # the sample's order, not sorted
    ids = [f"{i:04x}beef" for i in range(9)]
    pd.DataFrame({"id": ids, "breed": [breeds[i % 3] for i in range(9)]}).to_csv(root / "labels.csv", index=False)
    for i, name in enumerate(ids):
        _image(root / "train" / f"{name}.jpg", i)
    for name in ("ffff0001", "aaaa0002"):
        _image(root / "test" / f"{name}.jpg", 7)
    pd.DataFrame({"id": ["ffff0001", "aaaa0002"], **{b: 1 / 3 for b in breeds}}).to_csv(
        root / "sample_submission.csv", index=False)  # fmt: skip
    return root, breeds


def test_leaves_reads_the_layout_with_a_seeded_split(tmp_path):
    dm = Leaves(str(leaves(tmp_path)), val_size=4, seed=1, image_size=16, batch_size=4)
    assert (dm.num_classes, dm.in_channels, dm.classes) == (3, 3, sorted(SPECIES))
    dm.setup()
    assert (len(dm._train), len(dm._val), len(dm._predict)) == (8, 4, 3) and dm._test is dm._val
    assert dm.predict_ids == ["images/12.jpg", "images/13.jpg", "images/14.jpg"]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 16, 16) and y.dtype == torch.int64
    again = Leaves(str(tmp_path), val_size=4, seed=1)
    again.setup("fit")
    assert again._val.images == dm._val.images
    assert sorted(dm._train.images + dm._val.images) == sorted(str(tmp_path / f"images/{i}.jpg") for i in range(12))


def test_dogs_classes_follow_the_sample_and_travel_in_the_state(tmp_path):
    root, breeds = dogs(tmp_path)
    folds = tmp_path / "folds.csv"
    ids = [f"{i:04x}beef" for i in range(9)]
    pd.DataFrame({"id": ids, "fold": [i % 3 for i in range(9)]}).to_csv(folds, index=False)
    dm = DogBreeds(str(root), fold=1, folds_file=str(folds), image_size=16)
    dm.setup()
    assert dm.classes == breeds and dm._val.labels == [breeds.index(b) for b in ("beagle",) * 3]
    assert dm.predict_ids == ["ffff0001", "aaaa0002"]
    state = dm.state_dict()
    restored = DogBreeds(str(root), fold=1, folds_file=str(folds))
    restored.load_state_dict({"classes": breeds[::-1]})  # a checkpoint's order wins over the files'
    restored.setup("fit")
    assert restored.classes == breeds[::-1] and state == {"classes": breeds}
    assert restored._val.labels == [breeds[::-1].index("beagle")] * 3
    with pytest.raises(ValueError, match=r"folds.csv: no fold 7; it holds folds \[0, 1, 2\]"):
        DogBreeds(str(root), fold=7, folds_file=str(folds)).setup("fit")


def test_labels_outside_the_checkpoint_classes_are_named(tmp_path):
    dm = Leaves(str(leaves(tmp_path)))
    dm.load_state_dict({"classes": SPECIES[:2]})
    outside = r"labels outside the model's 2 classes: images/2.jpg='ulmus_rubra', images/5.jpg"
    with pytest.raises(DataError, match=outside):
        dm.setup("fit")


def test_csv_paths_may_not_leave_data_dir(tmp_path):
    root = leaves(tmp_path / "data")
    _image(tmp_path / "secret.jpg", 0)
    train = pd.read_csv(root / "train.csv")
    train.loc[4, "image"] = "../secret.jpg"
    train.loc[5, "image"] = str(tmp_path / "secret.jpg")
    train.to_csv(root / "train.csv", index=False)
    with pytest.raises(DataError, match=r"train.csv: paths outside .*\(refused\): line 6 \('../secret.jpg'\), line 7"):
        Leaves(str(root)).setup("fit")
    root, _ = dogs(tmp_path / "dogs")
    labels = pd.read_csv(root / "labels.csv", dtype=str)
    labels.loc[0, "id"] = "../../secret"
    labels.to_csv(root / "labels.csv", index=False)
    with pytest.raises(DataError, match=r"labels.csv: paths outside .*line 2 \('../../secret'\)"):
        DogBreeds(str(root)).setup("fit")


def test_unknown_breed_missing_image_and_header_only_csv_are_named(tmp_path):
    root, _ = dogs(tmp_path)
    labels = pd.read_csv(root / "labels.csv", dtype=str)
    labels.loc[2, "breed"] = "wolf"
    labels.to_csv(root / "labels.csv", index=False)
    (root / "train" / "0001beef.jpg").unlink()
    with pytest.raises(DataError) as e:
        DogBreeds(str(root)).setup("fit")
    assert "labels.csv: unknown breed (expected one of 3 classes): 0002beef='wolf'" in str(e.value)
    assert "images that are missing: 0001beef.jpg" in str(e.value)
    leaves(tmp_path / "l")
    (tmp_path / "l" / "test.csv").write_text("image\n")
    with pytest.raises(DataError, match=r"test.csv: no rows: only the header"):
        Leaves(str(tmp_path / "l")).setup()


def test_zoo_fit_trains_on_leaves_by_class_path(tmp_path):
    from zoo.cli.fit import main

    summary = main([
        "--model", "zoo.tasks.Classification", "--model.init_args.arch", "resnet18",
        "--model.init_args.arch_kwargs", "{stem: cifar, width: 4}",
        "--data.class_path", "datamodules.Leaves", "--data.init_args.data_dir", str(leaves(tmp_path / "data")),
        "--data.init_args.image_size", "16", "--data.init_args.batch_size", "4", "--data.init_args.val_size", "4",
        "--trainer.fast_dev_run", "1", "--trainer.default_root_dir", str(tmp_path / "runs"),
    ])  # fmt: skip
    assert 0.0 <= summary["test"]["test/acc"] <= 1.0
