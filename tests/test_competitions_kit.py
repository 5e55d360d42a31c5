"""The shared competition machinery: folds, submission checks and atomic writes, score log,
fetch instructions, and the house prices preprocessing fitted on training rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from competitions.kit import DataError
from competitions.kit.fetch import fetch
from competitions.kit.folds import load_or_make_folds, make_folds
from competitions.kit.scorelog import append_score
from competitions.kit.submission import check_submission, write_submission
from datamodules.house_prices import Preprocessor


def test_stratified_folds_balance_classes_and_are_reused(tmp_path):
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 5
    ids = [f"id{i}" for i in range(len(labels))]
    folds = make_folds(ids, 5, seed=1, labels=labels)
    counts = pd.crosstab(folds["fold"], pd.Series(labels))
    assert counts["a"].tolist() == [10] * 5 and counts["b"].tolist() == [6] * 5 and counts["c"].tolist() == [1] * 5
    path = tmp_path / "folds.csv"
    first = load_or_make_folds(path, ids, 5, seed=1, labels=labels)
    again = load_or_make_folds(path, ids, 5, seed=99, labels=labels)  # another seed: the saved folds win
    assert first["fold"].tolist() == again["fold"].tolist()
    with pytest.raises(ValueError, match="delete the file"):
        load_or_make_folds(path, ids[:-1], 5)


def test_check_submission_names_every_problem():
    table = pd.DataFrame({"id": ["1", "3", "9"], "label": ["cat", None, "dog"]})
    with pytest.raises(DataError) as e:
        check_submission(table, ["id", "class"], ["1", "2", "3"], "sub")
    msg = str(e.value)
    assert "header" in msg and "ids missing: 2" in msg and "ids not in the test set: 9" in msg
    assert "rows with a missing value (id): 3" in msg
    with pytest.raises(DataError, match="another order"):
        check_submission(pd.DataFrame({"id": ["2", "1"], "label": ["a", "b"]}), ["id", "label"], ["1", "2"], "s")


def test_failed_or_interrupted_write_keeps_the_previous_submission(tmp_path, monkeypatch):
    path = tmp_path / "submission.csv"
    good = pd.DataFrame({"id": ["1", "2"], "label": ["cat", "dog"]})
    write_submission(good, path, ["id", "label"], ["1", "2"])
    before = path.read_bytes()
    with pytest.raises(DataError):  # a NaN: rejected before anything is written
        write_submission(good.assign(label=["cat", None]), path, ["id", "label"], ["1", "2"])
    assert path.read_bytes() == before

    def half_then_crash(self, f, **kw):  # the process dies in the middle of writing
        f.write("id,label\n1,c")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        write_submission(good.assign(label=["ant", "bee"]), path, ["id", "label"], ["1", "2"])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["submission.csv"]  # no temporary left behind


def test_score_log_appends_rows(tmp_path):
    log = tmp_path / "scores.csv"
    append_score(log, competition="x", stage="fit", cv_score="0.5")
    append_score(log, competition="x", stage="predict", output="s.csv")
    rows = pd.read_csv(log)
    assert rows["stage"].tolist() == ["fit", "predict"] and rows["cv_score"].iloc[0] == 0.5
    with pytest.raises(ValueError, match="unknown score-log columns"):
        append_score(log, score=1)


def test_fetch_without_credentials_says_what_to_place_where(tmp_path, monkeypatch):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError) as e:
        fetch("cifar-10", tmp_path / "data", ["trainLabels.csv", "train/"])
    msg = str(e.value)
    assert "trainLabels.csv, train/" in msg and str(tmp_path / "data") in msg
    assert "kaggle.com/competitions/cifar-10" in msg and "no Kaggle credentials" in msg


def test_preprocessing_is_fitted_on_training_rows_only():
    train = pd.DataFrame({"Area": [1.0, 2.0, 3.0, None], "Zone": ["RL", "RM", None, "RL"]})
    val = pd.DataFrame({"Area": [100.0, None], "Zone": ["FV", None]})  # FV never seen in training
    pre = Preprocessor().fit(train)
    x = pre.transform(val)
    assert pre.width == 1 + 3  # Area; RL, RM, missing
    mean, std = 2.0, 1.0  # of the training rows only
    assert x[0, 0] == pytest.approx((100 - mean) / std) and x[1, 0] == 0.0  # missing -> 0 after scaling
    assert x[0, 1:].tolist() == [0, 0, 0] and x[1, 1:].tolist() == [0, 0, 1]  # unseen -> zeros; NA flagged
    assert np.allclose(Preprocessor.from_state(pre.state_dict()).transform(val), x)
    text = pd.DataFrame({"Area": [1.0, 2.0], "Zone": pd.array(["RL", "RM"], dtype="str")})
    assert Preprocessor().fit(text).state["categorical"] == ["Zone"]  # pandas 3 `str` columns are text
