"""CIFAR-10, dog breeds and Classify Leaves end to end on small generated images in each
competition's real layout: prepare, fit one tiny epoch, predict with flip TTA, checked
submission; bad input (a corrupt image, an unknown label, a missing column, a duplicate id)
named in one error; the class names travel in the checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from competitions.__main__ import main
from competitions.kit import DataError
from competitions.kit.predict import load_fold, predict_folds

TINY_NET = {"arch": "resnet18", "arch_kwargs": {"stem": "cifar", "width": 4}}


def save_image(path, seed, size=20):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def tiny_config(tmp_path, slug, folds=2, train_folds=(0,), model=None):
    """The competition's own recipe, shrunk: 2 folds, one epoch of two batches, 16 pixels."""
    cfg = yaml.safe_load(open(f"competitions/{slug}/config.yaml"))
    cfg["cv"].update(folds=folds, train_folds=list(train_folds))
    cfg["fit"]["trainer"].update(max_epochs=1, limit_train_batches=2, enable_checkpointing=True)
    cfg["fit"]["model"]["init_args"].update(model or TINY_NET)
    cfg["fit"]["data"]["init_args"].update(image_size=16, batch_size=4, num_workers=0)
    path = tmp_path / f"{slug}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def run(slug, stage, data, work, config):
    return main([slug, stage, "--data_dir", str(data), "--work_dir", str(work), "--config", config])


def cifar_layout(root, n_train=12, n_test=5, extra_labels=6):
    """``train/<id>.png`` for some of the ids of ``trainLabels.csv`` (which, as the course's tiny
    copy, also lists ids without an image), ``test/<id>.png``, no sample submission."""
    classes = ["airplane", "cat", "ship"]
    ids = list(range(1, n_train + extra_labels + 1))
    pd.DataFrame({"id": ids, "label": [classes[i % 3] for i in ids]}).to_csv(root / "trainLabels.csv", index=False)
    for i in ids[:n_train]:
        save_image(root / "train" / f"{i}.png", i)
    for i in range(1, n_test + 1):
        save_image(root / "test" / f"{i}.png", 100 + i)


def test_cifar10_end_to_end_without_a_sample(tmp_path, capsys):
    data, work = tmp_path / "data", tmp_path / "work"
    data.mkdir()
    cifar_layout(data)
    config = tiny_config(tmp_path, "cifar10")
    prepared = run("cifar10", "prepare", data, work, config)
    out = capsys.readouterr().out
    assert len(prepared.train) == 12 and "6 of the 18 ids in trainLabels.csv have no image" in out
    assert "no sampleSubmission.csv" in out
    folds = pd.read_csv(work / "folds.csv").merge(prepared.train.astype({"id": int}), on="id")
    assert pd.crosstab(folds["fold"], folds["label"]).to_numpy().tolist() == [[2, 2, 2], [2, 2, 2]]
    run("cifar10", "fit", data, work, config)
    sub = pd.read_csv(run("cifar10", "predict", data, work, config))
    assert list(sub.columns) == ["id", "label"] and sub["id"].tolist() == [1, 2, 3, 4, 5]
    assert sub["label"].isin(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                              "ship", "truck"]).all()  # fmt: skip


def test_cifar10_bad_input_listed_in_one_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    cifar_layout(data)
    (data / "train" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # a corrupt image
    labels = pd.read_csv(data / "trainLabels.csv")
    labels.loc[4, "label"] = "unicorn"  # id 5: an unknown label
    labels = pd.concat([labels, labels.iloc[[1]]])  # id 2 twice
    labels.to_csv(data / "trainLabels.csv", index=False)
    with pytest.raises(DataError) as e:
        run("cifar10", "prepare", data, tmp_path / "w", tiny_config(tmp_path, "cifar10"))
    msg = str(e.value)
    assert "trainLabels.csv: duplicate id: 2" in msg
    assert "trainLabels.csv: unknown label (expected one of 10 classes): 5='unicorn'" in msg
    assert "images that are missing or do not decode: 3.png" in msg


def dog_layout(root, sample=True):
    """``labels.csv`` (id,breed), ``train/<id>.jpg``, ``test/<id>.jpg`` and (``sample``) a sample
    submission whose breed columns are deliberately not sorted."""
    breeds = ["whippet", "beagle", "affenpinscher"]
    ids = [f"{i:04x}beef" for i in range(12)]
    pd.DataFrame({"id": ids, "breed": [breeds[i % 3] for i in range(12)]}).to_csv(root / "labels.csv", index=False)
    for i, name in enumerate(ids):
        save_image(root / "train" / f"{name}.jpg", i, size=24)
    test_ids = ["ffff0001", "aaaa0002", "cccc0003"]
    for i, name in enumerate(test_ids):
        save_image(root / "test" / f"{name}.jpg", 50 + i, size=24)
    if sample:
        write_dog_sample(root, breeds, test_ids)
    return breeds, test_ids


def write_dog_sample(root, breeds, test_ids):
    pd.DataFrame({"id": test_ids, **{b: 1 / 3 for b in breeds}}).to_csv(root / "sample_submission.csv", index=False)


def fold_outputs(checkpoint, stage, flip=False):
    """A fold's model outputs (class probabilities, in its own class order) on its held-out
    rows (``test``, with their labels) or on the competition's test images (``predict``),
    computed here from the checkpoint, apart from the competition's predict code."""
    task, data = load_fold(checkpoint)
    data.setup(stage)
    loader = data.test_dataloader() if stage == "test" else data.predict_dataloader()
    batches = [b if isinstance(b, (list, tuple)) else (b,) for b in loader]
    x = torch.cat([b[0] for b in batches])
    with torch.no_grad():
        probs = task.eval().predict_step((x.flip(-1) if flip else x,), 0)
    labels = torch.cat([b[1] for b in batches]) if stage == "test" else None
    return probs.double().numpy(), labels, data.classes


def test_dog_breeds_probabilities_in_the_sample_column_order(tmp_path):
    data, work = tmp_path / "data", tmp_path / "work"
    data.mkdir()
    breeds, test_ids = dog_layout(data)
    # the course's structure: a frozen backbone (here a tiny untrained timm net) and a new head
    frozen = {
        "arch": "finetune",
        "arch_kwargs": {"backbone": "test_resnet", "pretrained": False, "freeze_backbone": True},
    }
    config = tiny_config(tmp_path, "dog_breeds", model=frozen)
    run("dog_breeds", "prepare", data, work, config)
    cv = run("dog_breeds", "fit", data, work, config)
    assert cv["folds"][0]["score"] > 0  # log loss of the held-out fold
    sub = pd.read_csv(run("dog_breeds", "predict", data, work, config))
    assert list(sub.columns) == ["id", *breeds] and sub["id"].tolist() == test_ids
    assert np.allclose(sub[breeds].sum(axis=1), 1, atol=1e-5) and (sub[breeds] > 0).all().all()


def test_dog_breeds_score_is_the_fold_log_loss_and_columns_are_mapped_by_name_with_tta(tmp_path):
    """The model's classes are the sorted breeds (fit before the sample submission arrived); the
    sample lists them in another order, so each column must be picked by its breed's name."""
    data, work = tmp_path / "data", tmp_path / "work"
    data.mkdir()
    breeds, test_ids = dog_layout(data, sample=False)
    config = tiny_config(tmp_path, "dog_breeds")
    run("dog_breeds", "prepare", data, work, config)
    cv = run("dog_breeds", "fit", data, work, config)
    ckpt = cv["folds"][0]["checkpoint"]
    probs, labels, classes = fold_outputs(ckpt, "test")
    assert classes == sorted(breeds) != breeds  # the model's order is not the sample's
    log_loss = -np.log(probs[np.arange(len(labels)), labels.numpy()]).mean()
    assert cv["folds"][0]["score"] == pytest.approx(log_loss, rel=1e-5)  # last.ckpt on the held-out fold

    write_dog_sample(data, breeds, test_ids)
    run("dog_breeds", "prepare", data, work, config)  # the same rows: the saved folds stand
    sub = pd.read_csv(main(["dog_breeds", "predict", "--work_dir", str(work), "--config", config, "--tta"]))
    assert list(sub.columns) == ["id", *breeds]
    plain = fold_outputs(ckpt, "predict")[0]
    flipped = fold_outputs(ckpt, "predict", flip=True)[0]
    assert np.abs(plain - flipped).max() > 1e-4  # the images are not symmetric: flipping shows
    expected = (plain + flipped) / 2
    columns = [classes.index(b) for b in breeds]
    assert np.allclose(sub[breeds].to_numpy(), expected[:, columns], rtol=1e-4, atol=1e-6)
    assert not np.allclose(sub[breeds].to_numpy(), expected, rtol=1e-4, atol=1e-6)  # not the identity


def test_dog_breeds_unknown_breed(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    dog_layout(data)
    labels = pd.read_csv(data / "labels.csv")
    labels.loc[7, "breed"] = "wolf"
    labels.to_csv(data / "labels.csv", index=False)
    with pytest.raises(DataError, match="labels.csv: unknown breed .*: 0007beef='wolf'"):
        run("dog_breeds", "prepare", data, tmp_path / "w", tiny_config(tmp_path, "dog_breeds"))


def leaves_layout(root):
    """``train.csv`` (image,label), ``test.csv`` (image), ``images/<n>.jpg``, sample submission."""
    species = ["quercus_alba", "acer_rubrum", "ulmus_rubra"]
    train = pd.DataFrame(
        {"image": [f"images/{i}.jpg" for i in range(12)], "label": [species[i % 3] for i in range(12)]}
    )
    test = pd.DataFrame({"image": [f"images/{i}.jpg" for i in range(12, 16)]})
    for i in range(16):
        save_image(root / "images" / f"{i}.jpg", i)
    train.to_csv(root / "train.csv", index=False)
    test.to_csv(root / "test.csv", index=False)
    test.assign(label="acer_rubrum").to_csv(root / "sample_submission.csv", index=False)
    return train, test


def test_leaves_folds_averaged_and_class_names_come_from_the_checkpoint(tmp_path):
    data, work = tmp_path / "data", tmp_path / "work"
    data.mkdir()
    _, test = leaves_layout(data)
    config = tiny_config(tmp_path, "leaves", train_folds=(0, 1))
    run("leaves", "prepare", data, work, config)
    cv = run("leaves", "fit", data, work, config)
    assert [f["fold"] for f in cv["folds"]] == [0, 1]
    sub_path = run("leaves", "predict", data, work, config)
    sub = pd.read_csv(sub_path)
    assert list(sub.columns) == ["image", "label"] and sub["image"].tolist() == test["image"].tolist()
    assert sub["label"].isin(["quercus_alba", "acer_rubrum", "ulmus_rubra"]).all()
    # each fold's flip-averaged probabilities, computed here, then the mean over the two folds
    ckpts = [f["checkpoint"] for f in cv["folds"]]
    _, mean, classes = predict_folds(ckpts, tta=True)
    per_fold = []
    for ckpt in ckpts:
        plain, _, fold_classes = fold_outputs(ckpt, "predict")
        both = (plain + fold_outputs(ckpt, "predict", flip=True)[0]) / 2
        per_fold.append(both[:, [fold_classes.index(c) for c in classes]])
    assert np.abs(per_fold[0] - per_fold[1]).max() > 1e-4  # two models: averaging them shows
    assert np.allclose(mean, (per_fold[0] + per_fold[1]) / 2, rtol=1e-4, atol=1e-6)
    assert sub["label"].tolist() == [classes[i] for i in mean.argmax(1)]
    before = sub_path.read_bytes()
    # a later, reordered class list on disk must not change what the outputs mean
    info = json.loads((work / "prepared.json").read_text())
    info["classes"] = info["classes"][::-1]
    (work / "prepared.json").write_text(json.dumps(info))
    assert run("leaves", "predict", data, work, config).read_bytes() == before


def test_leaves_missing_column(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    train, _ = leaves_layout(data)
    train.rename(columns={"label": "species"}).to_csv(data / "train.csv", index=False)
    with pytest.raises(DataError, match="train.csv: missing column: label"):
        run("leaves", "prepare", data, tmp_path / "w", tiny_config(tmp_path, "leaves"))
