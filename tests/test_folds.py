"""``zoo.fit --folds K``: stratified folds of the training split saved once, one run per fold
validating on its fold, and the mean and standard deviation of every metric; the competitions
use the same fold code."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

import competitions.kit.folds
import zoo.cli.fit
import zoo.run.folds
from competitions.house_prices import COMPETITION as HOUSE_PRICES
from datamodules.base import FoldedData
from datamodules.fashion_mnist import FashionMNIST, read_idx
from zoo.cli.fit import main
from zoo.core.errors import ConfigError
from zoo.run.kfold import fit_k_folds

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
        values = [f["metrics"][metric] for f in saved["folds"]]
        assert saved["mean"][metric] == pytest.approx(statistics.fmean(values))
        assert saved["std"][metric] == pytest.approx(statistics.stdev(values))
    assert saved["score_key"] == "val/acc" and saved["cv_score"] == saved["mean"]["val/acc"]  # the task's monitor
    for k in (0, 1):  # each run validated on its own fold, the other fold trained
        run = cv_dir / f"fold{k}" / "version_0"
        assert (run / "checkpoints" / "last.ckpt").is_file()
        fold = saved["folds"][k]
        assert fold["run_dir"] == str(run) and Path(fold["checkpoint"]).parent == run / "checkpoints"
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


def test_fold_and_folds_file_come_together():
    with pytest.raises(ConfigError, match="^fold=1 without folds_file: give both"):
        FashionMNIST(fold=1)
    with pytest.raises(ConfigError, match="^folds_file=f.csv without fold: give both"):
        FashionMNIST(folds_file="f.csv")


class SixRows(FoldedData):
    """Six training rows, no data: what the drivers ask of a data module."""

    def fold_rows(self):
        return [str(i) for i in range(6)], None


def _fake_fit(args: list[str]) -> dict:
    """A finished zoo.fit run of the fold ``args`` name: its folder, last.ckpt and metrics.json."""
    root, name = Path(args[args.index("--trainer.default_root_dir") + 1]), args[args.index("--name") + 1]
    run = root / name / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    k = int(name.removeprefix("fold"))
    summary = {"test": {"test/rmse": 0.1 * (k + 1), "test/loss": 0.2 * (k + 1)}, "best_val": {"val/loss": 0.3},
               "best_checkpoint": None, "wall_seconds": 1.0, "metrics_file": str(run / "metrics.json")}  # fmt: skip
    (run / "metrics.json").write_text(json.dumps(summary))
    return summary


def test_folds_and_a_competition_write_the_same_cv_json_keys(tmp_path, monkeypatch):
    """The one driver: ``zoo.fit --folds`` and a competition's fit stage, each with the same
    stand-in for a fold's run, write cv.json with the same keys, at the top and in each fold."""
    trainer, data = SimpleNamespace(default_root_dir=str(tmp_path)), SimpleNamespace(init_args={"seed": 0})
    config = SimpleNamespace(folds=2, ckpt_path=None, name="six", trainer=trainer, data=data)
    cli = SimpleNamespace(config=config, datamodule=SixRows(), model=SimpleNamespace(monitor=("val/loss", "min")))
    fit_k_folds(cli, ["--config", "six.yaml"], _fake_fit)
    by_folds = json.loads((tmp_path / "six_cv2" / "cv.json").read_text())

    work = tmp_path / "work"
    work.mkdir()
    (work / "prepared.json").write_text(json.dumps({"data_dir": str(tmp_path)}))
    zoo.run.folds.load_or_make_folds(work / "folds.csv", [str(i) for i in range(6)], 2)
    monkeypatch.setattr(zoo.cli.fit, "main", lambda args, one_line_errors: _fake_fit(args))
    HOUSE_PRICES.fit(work, {"fit": {}}, "config.yaml", [])
    by_competition = json.loads((work / "cv.json").read_text())

    keys = {"name", "folds_file", "score_key", "cv_score", "cv_std", "mean", "std", "wall_seconds", "folds"}
    assert set(by_folds) == set(by_competition) == keys
    fold_keys = {"fold", "args", "run_dir", "checkpoint", "score", "metrics"}
    assert [set(f) for f in by_folds["folds"]] == [set(f) for f in by_competition["folds"]] == [fold_keys] * 2
    assert by_folds["folds"][1]["metrics"] == by_competition["folds"][1]["metrics"]
    assert by_folds["score_key"] == "val/loss" and by_competition["score_key"] == "test/rmse"
    assert by_competition["cv_score"] == pytest.approx(0.15) and by_competition["folds"][0]["score"] == 0.1
    assert by_competition["folds"][0]["checkpoint"] == str(work / "fold0/version_0/checkpoints/last.ckpt")
    assert by_folds["folds_file"] == str((tmp_path / "six_cv2" / "folds.csv").resolve())
    assert pd.read_csv(work / "scores.csv")["fold_scores"].tolist() == ["0.10000 0.20000"]
