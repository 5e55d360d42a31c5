"""``zoo.fit --folds K``: stratified folds of the training split saved once, one run per fold
validating on its fold, and the mean and standard deviation of every metric; the competitions
use the same fold code."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd
import pytest

import competitions.kit.folds
import zoo.run.folds
from datamodules.fashion_mnist import FashionMNIST, read_idx
from zoo.cli.fit import main

RECIPES = Path(__file__).parents[1] / "configs"


def _args(data_dir, root, *extra):
    return ["--config", str(RECIPES / "lenet_fashion_mnist.yaml"), "--data.init_args.data_dir", str(data_dir),
            "--data.init_args.batch_size", "64", "--data.init_args.download", "false",
            "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
            "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", *extra]  # fmt: skip


def test_one_run_per_fold_and_the_mean_and_std_of_each_metric(fashion_dir, tmp_path):
    result = main(_args(fashion_dir, tmp_path, "--folds", "2"))
    cv_dir = tmp_path / "lenet_fashion_mnist_cv2"
    folds = pd.read_csv(cv_dir / "folds.csv", dtype={"id": str})
    labels = read_idx(fashion_dir / "train-labels-idx1-ubyte.gz").numpy()
    assert folds["id"].tolist() == [str(i) for i in range(300)]
    per_class = pd.crosstab(labels, folds["fold"].to_numpy())
    assert (per_class[0] - per_class[1]).abs().max() <= 1  # stratified by class
    saved = json.loads((cv_dir / "cv.json").read_text())
    assert saved == json.loads(json.dumps({k: v for k, v in result.items() if k != "cv_file"}))
    assert [f["fold"] for f in saved["folds"]] == [0, 1]
    for metric in ("test/acc", "test/loss", "val/acc", "wall_seconds"):
        values = [f[metric] for f in saved["folds"]]
        assert saved["mean"][metric] == pytest.approx(statistics.fmean(values))
        assert saved["std"][metric] == pytest.approx(statistics.stdev(values))
    for k in (0, 1):  # each run validated on its own fold, the other fold trained
        run = cv_dir / f"fold{k}" / "version_0"
        assert (run / "checkpoints" / "last.ckpt").is_file()
        data = FashionMNIST(str(fashion_dir), fold=k, folds_file=str(cv_dir / "folds.csv"), download=False)
        data.setup("fit")
        assert len(data._val) == (folds["fold"] == k).sum() and len(data._train) == 300 - len(data._val)
    # a rerun with another K is refused rather than silently drawing other folds into the same file
    # saved folds that no longer fit (here: 2 folds where 3 are asked for) are refused, not redrawn
    (tmp_path / "lenet_fashion_mnist_cv3").mkdir()
    (tmp_path / "lenet_fashion_mnist_cv3" / "folds.csv").write_text((cv_dir / "folds.csv").read_text())
    with pytest.raises(SystemExit, match="folds.csv holds 300 ids in 2 folds.*folds=3"):
        main(_args(fashion_dir, tmp_path, "--folds", "3"), one_line_errors=True)


def test_a_data_module_without_folds_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="--folds: SyntheticRegression cannot hold out folds"):
        main(["--config", str(RECIPES / "linear_regression.yaml"), "--folds", "2",
              "--trainer.default_root_dir", str(tmp_path)], one_line_errors=True)  # fmt: skip
    assert not any(tmp_path.iterdir())


def test_the_competitions_folds_are_the_same_code():
    assert competitions.kit.folds.load_or_make_folds is zoo.run.folds.load_or_make_folds
    assert competitions.kit.folds.make_folds is zoo.run.folds.make_folds
