"""House prices end to end on small CSVs in Kaggle's format: prepare, 2-fold fit, predict,
checked submission; and each kind of bad input named in one error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from competitions.__main__ import main
from competitions.kit import DataError
from competitions.kit.predict import predict_folds


def write_house_csvs(folder, n_train=48, n_test=16, course_names=True, sample=False):
    """Rows in the real layout: ``Id`` first, numeric and text columns with ``NA`` gaps, and
    ``SalePrice`` last in the training file."""
    rng = np.random.default_rng(0)
    n = n_train + n_test
    area = rng.uniform(500, 3000, n).round()
    frame = pd.DataFrame({
        "Id": np.arange(1, n + 1),
        "MSSubClass": rng.choice([20, 60, 120], n),
        "LotFrontage": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(30, 120, n).round()),
        "GrLivArea": area,
        "MSZoning": rng.choice(["RL", "RM", "FV"], n),
        "Alley": np.where(rng.random(n) < 0.8, None, "Grvl"),
    })  # fmt: skip
    price = 20000 + 90 * area * (1 + (frame["MSZoning"] == "FV")) * rng.lognormal(0, 0.1, n)
    names = ("kaggle_house_pred_train.csv", "kaggle_house_pred_test.csv") if course_names else ("train.csv", "test.csv")
    folder.mkdir(parents=True, exist_ok=True)
    frame.iloc[:n_train].assign(SalePrice=price[:n_train].round()).to_csv(folder / names[0], index=False, na_rep="NA")
    frame.iloc[n_train:].to_csv(folder / names[1], index=False, na_rep="NA")
    if sample:
        pd.DataFrame({"Id": frame["Id"].iloc[n_train:], "SalePrice": 180000}).to_csv(
            folder / "sample_submission.csv", index=False
        )
    return folder / names[0], folder / names[1]


def tiny_config(tmp_path):
    cfg = yaml.safe_load(open("competitions/house_prices/config.yaml"))
    cfg["cv"]["folds"] = 2
    cfg["fit"]["trainer"].update(max_epochs=60, limit_val_batches=0)  # no selection on the held-out fold
    cfg["fit"]["model"]["init_args"].update(lr=1.0)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_prepare_fit_predict_writes_a_checked_submission(tmp_path):
    """The course's file names and no sample submission: checked against the test ids."""
    data, work = tmp_path / "data", tmp_path / "work"
    _, test_csv = write_house_csvs(data)
    config = tiny_config(tmp_path)
    main(["house_prices", "prepare", "--data_dir", str(data), "--work_dir", str(work), "--config", config])
    folds = pd.read_csv(work / "folds.csv")
    assert sorted(folds["fold"].value_counts().tolist()) == [24, 24]
    cv = main(["house_prices", "fit", "--work_dir", str(work), "--config", config])
    assert len(cv["folds"]) == 2 and 0 < cv["cv_score"] < 1.5
    sub_path = main(["house_prices", "predict", "--work_dir", str(work), "--config", config])
    sub = pd.read_csv(sub_path)
    assert list(sub.columns) == ["Id", "SalePrice"]
    assert sub["Id"].tolist() == pd.read_csv(test_csv)["Id"].tolist()
    assert sub["SalePrice"].between(1e3, 1e7).all()
    # the folds' log prices, each predicted here on its own, then averaged: a geometric mean
    per_fold = [predict_folds([f["checkpoint"]], tta=False)[1][:, 0] for f in cv["folds"]]
    assert np.abs(per_fold[0] - per_fold[1]).max() > 1e-3  # two models: averaging them shows
    assert np.allclose(np.log(sub["SalePrice"]), (per_fold[0] + per_fold[1]) / 2, rtol=0, atol=1e-5)
    log = pd.read_csv(work / "scores.csv")
    assert log["stage"].tolist() == ["fit", "predict"] and log["cv_score"].notna().all()


def test_kaggle_names_and_sample_submission(tmp_path):
    data, work = tmp_path / "data", tmp_path / "work"
    write_house_csvs(data, course_names=False, sample=True)
    prepared = main(["house_prices", "prepare", "--data_dir", str(data), "--work_dir", str(work)])
    assert len(prepared.train) == 48 and prepared.notes == []  # no "no sample" note
    assert json.loads((work / "prepared.json").read_text())["sample"] == str(data / "sample_submission.csv")


def test_bad_input_is_named_in_one_error(tmp_path):
    data = tmp_path / "data"
    train_csv, test_csv = write_house_csvs(data, n_train=10, n_test=4)
    train, test = pd.read_csv(train_csv), pd.read_csv(test_csv)
    train.loc[3, "Id"] = train.loc[2, "Id"]  # a duplicate id
    train.loc[5, "SalePrice"] = -1  # not a price
    train.to_csv(train_csv, index=False)
    test.drop(columns=["GrLivArea"]).to_csv(test_csv, index=False)  # a missing column
    with pytest.raises(DataError) as e:
        main(["house_prices", "prepare", "--data_dir", str(data), "--work_dir", str(tmp_path / "w")])
    msg = str(e.value)
    assert "kaggle_house_pred_train.csv: duplicate Id: 3" in msg
    assert "kaggle_house_pred_test.csv: missing column (present in kaggle_house_pred_train.csv): GrLivArea" in msg
    assert "SalePrice not a positive number, rows with Id: 6" in msg
