"""Kaggle's "House Prices - Advanced Regression Techniques" (the Ames data of De Cock, 2011),
as the course uses it in its Kaggle lecture (d2l "Predicting House Prices on Kaggle").

The course's preprocessing: standardise every numeric column, then fill its missing values with
0 (the mean), and one-hot encode every other column with an extra "missing" indicator. Unlike
the course, which fits the means, deviations and categories on training and test rows together,
``HousePrices`` fits them on the training rows of the current split only and applies them
unchanged to validation and test rows, so a validation score is honest. Targets are log prices
(the competition scores the RMSE of log prices). Two options of this zoo's recipe go beyond the
course: ``log_skewed`` takes log1p of right-skewed non-negative columns and ``clip_quantile``
clips numeric columns to the training rows' quantiles, so an unusually large house does not
extrapolate a linear model far off; both are fitted on training rows too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from datamodules.base import FoldedData, TensorDataset, read_csv
from datamodules.download import find_data
from zoo.core.problems import Problems

ID, TARGET = "Id", "SalePrice"
#: Kaggle's names, then the course's (d2l's DATA_HUB copies)
NAMINGS = (("train.csv", "test.csv"), ("kaggle_house_pred_train.csv", "kaggle_house_pred_test.csv"))


def find_house_files(data_dir: str | Path) -> tuple[Path, Path]:
    """The train and test CSVs in ``data_dir`` under either naming (``find_data``'s policy; no
    system copy, no download: Kaggle's files need an account)."""
    data_dir = Path(data_dir).expanduser()
    found = find_data(
        "house prices", [(data_dir, {"train": (train,), "test": (test,)}) for train, test in NAMINGS],
        no_fetch="Kaggle's files cannot be downloaded without an account",
        how="Get them from https://www.kaggle.com/competitions/house-prices-advanced-regression-techniques/data",
    )  # fmt: skip
    return found.paths["train"], found.paths["test"]


def check_house_frames(train: pd.DataFrame, test: pd.DataFrame, train_csv: Path, test_csv: Path, id_col: str,
                       target: str) -> None:  # fmt: skip
    """Raise one ``DataError`` naming the files unless both have ``id_col``, every training
    price is a positive number (its log is the target), the test rows have every training
    feature column, and the numeric ones hold finite numbers in both files."""
    problems = Problems()
    for frame, path, required in ((train, train_csv, (id_col, target)), (test, test_csv, (id_col,))):
        problems.add_each(f"{path.name}: missing column", [c for c in required if c not in frame.columns])
    features = [c for c in train.columns if c not in (id_col, target)]
    problems.add_each(f"{test_csv.name}: missing column (present in {train_csv.name})",
                      [c for c in features if c not in test.columns])  # fmt: skip
    numeric = [c for c in train[features].select_dtypes("number").columns if c in test.columns]
    # text where the training rows have numbers cannot be standardised, nor can an infinite value
    problems.add_each(f"{test_csv.name}: text in a numeric column",
                      [c for c in numeric if not pd.api.types.is_numeric_dtype(test[c])])  # fmt: skip
    for frame, path in ((train, train_csv), (test, test_csv)):
        values = frame[[c for c in numeric if pd.api.types.is_numeric_dtype(frame[c])]]
        problems.add_each(f"{path.name}: infinite values in column", list(values.columns[np.isinf(values).any()]))
    if target in train.columns:  # a missing, non-numeric or non-positive price has no log
        price = pd.to_numeric(train[target], errors="coerce")
        bad = train[id_col][~(price > 0)] if id_col in train.columns else train.index[~(price > 0)]
        problems.add_each(f"{train_csv.name}: {target} not a positive number, rows with {id_col}", bad)
    problems.raise_if_any(str(train_csv.parent))


class Preprocessor:
    """The course's feature preprocessing, fitted on training rows and then applied unchanged.

    Numeric columns are those pandas reads as numbers (``select_dtypes("number")``; pandas 3
    reads text as ``str``, so ``dtype != object`` no longer finds the text columns).
    """

    def __init__(self, log_skewed: float | None = None, clip_quantile: float = 0.0,
                 max_categories: int | None = None) -> None:  # fmt: skip
        self.log_skewed, self.clip_quantile, self.max_categories = log_skewed, clip_quantile, max_categories
        self.state: dict[str, Any] = {}

    def fit(self, features: pd.DataFrame) -> Preprocessor:
        numeric = list(features.select_dtypes("number").columns)
        x = features[numeric].astype(float)
        logged: list[str] = []
        if self.log_skewed is not None:
            skew = x.skew()
            logged = [c for c in numeric if skew[c] > self.log_skewed and x[c].min() >= 0]
            x[logged] = np.log1p(x[logged])
        bounds = None
        if self.clip_quantile:
            lo, hi = x.quantile(self.clip_quantile), x.quantile(1 - self.clip_quantile)
            x = x.clip(lo, hi, axis=1)
            bounds = [lo.tolist(), hi.tolist()]
        std = x.std().fillna(1.0).replace(0.0, 1.0)  # a constant column stays 0 after centring
        categorical = [c for c in features.columns if c not in numeric]
        self.state = {
            "numeric": numeric, "logged": logged, "categorical": categorical,
            "bounds": bounds, "mean": x.mean().fillna(0.0).tolist(), "std": std.tolist(),
            "categories": {c: self._categories(features[c]) for c in categorical},
        }  # fmt: skip
        return self

    def _categories(self, values: pd.Series) -> list[str]:
        """The column's categories, sorted; with ``max_categories`` only the most frequent
        ones (ties by name): rarer values, like unseen ones, get no indicator of their own."""
        counts = values.dropna().astype(str).value_counts()
        if self.max_categories is not None and len(counts) > self.max_categories:
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            return sorted(c for c, _ in ranked[: self.max_categories])
        return sorted(counts.index)

    @property
    def width(self) -> int:
        return len(self.state["numeric"]) + sum(len(v) + 1 for v in self.state["categories"].values())

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        """``(N, width)`` float32: standardised numeric columns (missing -> 0), then per text
        column one indicator per training category and one for "missing" (a category unseen
        in the training rows gets all zeros)."""
        s = self.state
        missing = [c for c in s["numeric"] + s["categorical"] if c not in features.columns]
        if missing:
            raise KeyError(f"house prices: columns {missing} are missing from the rows to transform")
        x = features[s["numeric"]].astype(float)
        x[s["logged"]] = np.log1p(x[s["logged"]].clip(lower=0))
        if s["bounds"]:
            x = x.clip(np.array(s["bounds"][0]), np.array(s["bounds"][1]), axis=1)
        x = ((x - np.array(s["mean"])) / np.array(s["std"])).fillna(0.0)
        blocks = [x.to_numpy(np.float32)]
        for col in s["categorical"]:
            cats = s["categories"][col]
            values = features[col]
            codes = pd.Categorical(values.astype(str).where(values.notna()), categories=cats).codes
            onehot = np.zeros((len(features), len(cats) + 1), np.float32)
            rows = np.flatnonzero(codes >= 0)
            onehot[rows, codes[rows]] = 1.0
            onehot[:, -1] = values.isna().to_numpy()
            blocks.append(onehot)
        return np.concatenate(blocks, axis=1)

    def state_dict(self) -> dict[str, Any]:
        return {"log_skewed": self.log_skewed, "clip_quantile": self.clip_quantile,
                "max_categories": self.max_categories, **self.state}  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        state = dict(state)
        pre = cls(state.pop("log_skewed"), state.pop("clip_quantile"), state.pop("max_categories", None))
        pre.state = state
        return pre


class HousePrices(FoldedData):
    """House prices as ``(B, in_features)`` features and ``(B, 1)`` log prices.

    Validation rows are fold ``fold`` of ``folds_file`` (a CSV ``id,fold`` written by the
    competition pipeline), or else a seeded ``val_size`` split. The test loader serves the same
    validation rows (Kaggle's test rows have no prices), so ``zoo.fit``'s test metrics of the
    best checkpoint are the held-out score; ``predict_dataloader`` serves Kaggle's test rows,
    with their ids in ``predict_ids``. The fitted preprocessing is saved in every checkpoint.

    Args:
        data_dir: folder with ``train.csv``/``test.csv`` or the course's ``kaggle_house_pred_*.csv``.
        fold, folds_file: the held-out fold and the saved folds.
        val_size, seed: the validation split when no folds are given.
        log_skewed: log1p columns whose training skewness exceeds this (``None``: off, as the course).
        clip_quantile: clip numeric columns to these training quantiles (0: off, as the course).
    """

    id_col, target = ID, TARGET

    def __init__(
        self,
        data_dir: str = "data/kaggle_house",
        batch_size: int = 64,
        fold: int | None = None,
        folds_file: str | None = None,
        val_size: float = 0.2,
        seed: int = 0,
        log_skewed: float | None = None,
        clip_quantile: float = 0.0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers, fold=fold, folds_file=folds_file)
        self.save_hyperparameters()
        self.data_dir = data_dir
        self.preprocess: Preprocessor | None = None
        self._frames: tuple[pd.DataFrame, pd.DataFrame] | None = None

    def find_files(self) -> tuple[Path, Path]:
        """The train and test CSVs."""
        return find_house_files(self.data_dir)

    def make_preprocessor(self) -> Preprocessor:
        """The (unfitted) feature preprocessing of this competition."""
        return Preprocessor(self.hparams.log_skewed, self.hparams.clip_quantile)

    def _read(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self._frames is None:
            train_csv, test_csv = self.find_files()
            # low_memory=False: a column's type is decided on all its rows, not per chunk
            train, test = read_csv(train_csv, low_memory=False), read_csv(test_csv, low_memory=False)
            check_house_frames(train, test, train_csv, test_csv, self.id_col, self.target)
            self._frames = train, test
        return self._frames

    def fold_rows(self) -> tuple[list[str], None]:
        """The training rows' ids (no labels to stratify by), for ``zoo.fit --folds``."""
        train, _ = self._read()
        return train[self.id_col].astype(str).tolist(), None

    def _split(self, train: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self.split(train[self.id_col].astype(str).tolist(), self.hparams.val_size, self.hparams.seed)

    def _features(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(columns=[c for c in (self.id_col, self.target) if c in frame.columns])

    def _fitted(self) -> Preprocessor:
        if self.preprocess is None:
            train, _ = self._read()
            rows, _ = self._split(train)
            self.preprocess = self.make_preprocessor()
            self.preprocess.fit(self._features(train.iloc[rows]))
        return self.preprocess

    @property
    def in_features(self) -> int:  # read by zoo.fit before setup, so the fit happens here
        return self._fitted().width

    def _tensors(self, frame: pd.DataFrame) -> list[torch.Tensor]:
        x = [torch.from_numpy(self._fitted().transform(self._features(frame)))]
        if self.target in frame.columns:
            x.append(torch.from_numpy(np.log(frame[self.target].to_numpy(np.float32))).unsqueeze(1))
        return x

    def setup(self, stage: str | None = None) -> None:
        train, test = self._read()
        if stage != "predict":
            tr, va = self._split(train)
            self._train = TensorDataset(*self._tensors(train.iloc[tr]))
            self._val = TensorDataset(*self._tensors(train.iloc[va]))
            self._test = self._val  # the held-out fold: Kaggle's test rows have no prices
        if stage in (None, "predict"):
            self._predict = TensorDataset(*self._tensors(test))
            self.predict_ids = test[self.id_col].astype(str).tolist()

    def predict_dataloader(self):
        return self.loader(self._predict)

    def state_dict(self) -> dict[str, Any]:
        return {"preprocess": self.preprocess.state_dict()} if self.preprocess else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "preprocess" in state:
            self.preprocess = type(self.make_preprocessor()).from_state(state["preprocess"])
