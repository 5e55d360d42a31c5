"""Kaggle "House Prices - Advanced Regression Techniques" (the course's Kaggle lecture 15).

Raw files: ``train.csv`` (``Id``, 79 feature columns, ``SalePrice``) and ``test.csv``, or the
course's copies ``kaggle_house_pred_train.csv``/``kaggle_house_pred_test.csv``; Kaggle ships a
``sample_submission.csv``, the course's copies do not. Metric: RMSE of log prices. Features
and targets come from ``datamodules.HousePrices``; submission ``Id,SalePrice``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from competitions.kit import Competition, Prepared, Problems, load_prepared
from datamodules.base import read_csv
from datamodules.house_prices import ID, NAMINGS, TARGET


class HousePrices(Competition):
    slug = "house-prices-advanced-regression-techniques"
    metric = "log-RMSE"
    score_key = "test/rmse"  # the RMSE of log prices on the held-out fold
    stratify = False
    files = {"train": tuple(n[0] for n in NAMINGS), "test": tuple(n[1] for n in NAMINGS)}
    id_col, target = ID, TARGET
    header = [ID, TARGET]

    def read(self, data_dir: Path, found: dict[str, Path], sample: Path | None) -> Prepared:
        # names the file when it has no rows or is not UTF-8; types decided on all rows, not per chunk
        train, test = read_csv(found["train"], low_memory=False), read_csv(found["test"], low_memory=False)
        id_col, target = self.id_col, self.target
        problems = Problems()
        for frame, path, required in ((train, found["train"], (id_col, target)), (test, found["test"], (id_col,))):
            problems.add_each(f"{path.name}: missing column", [c for c in required if c not in frame.columns])
            if id_col in frame.columns:
                problems.add_each(
                    f"{path.name}: duplicate {id_col}", frame[id_col][frame[id_col].duplicated()].unique()
                )
        features = [c for c in train.columns if c not in (id_col, target)]
        problems.add_each(f"{found['test'].name}: missing column (present in {found['train'].name})",
                          [c for c in features if c not in test.columns])  # fmt: skip
        numeric = train[features].select_dtypes("number").columns
        problems.add_each(
            f"{found['test'].name}: text in a numeric column",
            [c for c in numeric if c in test.columns and not pd.api.types.is_numeric_dtype(test[c])],
        )
        if target in train.columns:
            price = pd.to_numeric(train[target], errors="coerce")
            bad = train[id_col][~(price > 0)] if id_col in train.columns else train.index[~(price > 0)]
            problems.add_each(f"{found['train'].name}: {target} not a positive number, rows with {id_col}", bad)
        problems.raise_if_any(str(data_dir))
        return Prepared(train=pd.DataFrame({"id": train[id_col].astype(str), "label": train[target]}),
                        test=pd.DataFrame({"id": test[id_col].astype(str)}), header=self.header)  # fmt: skip

    def fold_args(self, work_dir: Path, fold: int) -> list[str]:
        data_dir = load_prepared(work_dir)["data_dir"]
        folds = str((work_dir / "folds.csv").resolve())
        return ["--data.init_args.data_dir", data_dir, "--data.init_args.folds_file", folds,
                "--data.init_args.fold", str(fold)]  # fmt: skip

    def submission(
        self, ids: list[str], preds: np.ndarray, classes: list[str] | None, header: list[str]
    ) -> pd.DataFrame:
        # the folds' log prices were averaged (a geometric mean of prices); back to dollars
        return pd.DataFrame({header[0]: ids, header[1]: np.exp(preds.reshape(len(ids), -1)[:, 0])})


COMPETITION = HousePrices()
