"""Kaggle's "California House Prices" (2020-21 sales scraped from Zillow), the course's second
house-prices competition (lecture 15, Kaggle ``california-house-prices``).

``train.csv``: ``Id``, ``Address``, ``Sold Price`` (the target), ``Summary``, then ``Type``,
``Year built``, ``Heating``, ``Cooling``, ``Parking``, ``Lot``, ``Bedrooms``, ... ``Listed On``,
``Listed Price``, ``Last Sold On``, ``Last Sold Price``, ``City``, ``Zip``, ``State`` (41
columns); ``test.csv`` the same without ``Sold Price``; ``sample_submission.csv`` is
``Id,Sold Price``. One-hot encoding every text column, as the course does for the Ames data,
would make thousands of columns here (every address and listing summary is unique), so the
columns follow a policy fitted on each fold's training rows (``CaliforniaPreprocessor``):

* **free text** (``Address``, ``Summary``, and any other text column whose training values are
  mostly unique and not lists) is dropped;
* **dates** (``Listed On``, ``Last Sold On``) become years as numbers (2020.5 for early July);
* **lists** (``Appliances included``, ``Heating features``, ``Flooring``, ...: text columns of
  comma-separated items that recur) become one indicator per item among the ``max_items`` most
  frequent;
* **categories** (``Type``, ``City``, ``Zip``, schools, ...) get one indicator per value among
  the ``max_categories`` most frequent (``Preprocessor``'s one-hot, capped);
* **mixed** columns, mostly numbers with some text (``Bedrooms`` holds counts and also room
  descriptions such as ``"Walk-in Closet, Ground Floor Bedroom"``), keep their numbers, read the
  text as missing, and are named with a count and an example in a warning;
* numbers are standardised as for the Ames data (optionally log1p of skewed columns and
  clipping at quantiles). The target is the log price.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from datamodules.download import find_data
from datamodules.house_prices import HousePrices, Preprocessor

ID, TARGET = "Id", "Sold Price"
FREE_TEXT = ("Address", "Summary")
DATES = ("Listed On", "Last Sold On")
CATEGORICAL = ("Zip",)  # read as numbers, meant as categories


def find_california_files(data_dir: str | Path) -> tuple[Path, Path]:
    """``train.csv`` and ``test.csv`` in ``data_dir`` (``find_data``'s policy; no system copy,
    no download: Kaggle's files need an account)."""
    found = find_data(
        "California house prices", [(Path(data_dir).expanduser(), {"train": ("train.csv",), "test": ("test.csv",)})],
        no_fetch="Kaggle's files cannot be downloaded without an account",
        how="Get them from https://www.kaggle.com/competitions/california-house-prices/data",
    )  # fmt: skip
    return found.paths["train"], found.paths["test"]


def _as_years(values: pd.Series) -> pd.Series:
    """Dates as fractional years (``2020-07-02`` -> 2020.50); unreadable dates are missing."""
    dates = pd.to_datetime(values, errors="coerce", format="mixed")
    return dates.dt.year + (dates.dt.day_of_year - 1) / 365.25


def _items(values: pd.Series) -> pd.Series:
    """A list column's cells as sets of lower-case items (``"Dishwasher, Dryer"``)."""
    return values.fillna("").astype(str).map(lambda s: {t.strip().lower() for t in s.split(",") if t.strip()})


def _category(value: Any) -> str:
    """A category's name: ``94022`` for a zip code pandas read as the float 94022.0."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


class CaliforniaPreprocessor(Preprocessor):
    """The column policy of the module docstring, then ``Preprocessor``'s numbers and capped
    one-hot categories. Everything is fitted on training rows and saved in checkpoints."""

    def __init__(self, log_skewed: float | None = None, clip_quantile: float = 0.0, max_categories: int | None = 30,
                 max_items: int = 20, free_text_ratio: float = 0.5) -> None:  # fmt: skip
        super().__init__(log_skewed, clip_quantile, max_categories)
        self.max_items, self.free_text_ratio = max_items, free_text_ratio
        self.policy: dict[str, Any] = {}

    def fit(self, features: pd.DataFrame) -> CaliforniaPreprocessor:
        text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
        policy: dict[str, Any] = {"free_text": [], "dates": [], "lists": {}, "mixed": {}, "categorical": []}
        for col in features.columns:
            values = features[col].dropna()
            if col in DATES:
                policy["dates"].append(col)
            elif col in FREE_TEXT:
                policy["free_text"].append(col)
            elif col in CATEGORICAL:
                policy["categorical"].append(col)
            elif col not in text or values.empty:
                continue
            elif (numbers := pd.to_numeric(values, errors="coerce")).notna().mean() >= 0.5:
                bad = values[numbers.isna()]
                policy["mixed"][col] = {"text_values": len(bad), "of": len(values), "example": str(bad.iloc[0])}
            elif (items := self._list_items(values)) is not None:
                policy["lists"][col] = items
            elif values.nunique() > self.free_text_ratio * len(values):
                policy["free_text"].append(col)
            else:
                policy["categorical"].append(col)
        for col, m in policy["mixed"].items():
            warnings.warn(f"California house prices: column {col!r} mixes numbers and text ({m['text_values']} of "
                          f"{m['of']} training values are text, e.g. {m['example']!r}); the text is read as missing",
                          stacklevel=2)  # fmt: skip
        self.policy = policy
        super().fit(self._apply(features))
        return self

    def _list_items(self, values: pd.Series) -> list[str] | None:
        """The ``max_items`` most frequent items when ``values`` are comma-separated lists whose
        items repeat (``"Dishwasher, Dryer"``); ``None`` for other text (free text's pieces
        between commas are mostly unique)."""
        if values.astype(str).str.contains(",").mean() < 0.1:
            return None
        counts = pd.Series([t for s in _items(values) for t in s]).value_counts()
        if len(counts) > self.free_text_ratio * counts.sum():
            return None
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: self.max_items]
        return sorted(t for t, _ in ranked)

    def _apply(self, features: pd.DataFrame) -> pd.DataFrame:
        """The raw columns as numbers (dates, mixed, item indicators) and text categories."""
        p, out = self.policy, {}
        for col in features.columns:
            if col in p["free_text"]:
                continue
            if col in p["dates"]:
                out[col] = _as_years(features[col])
            elif col in p["mixed"]:
                out[col] = pd.to_numeric(features[col], errors="coerce")
            elif col in p["lists"]:
                items = _items(features[col])
                for item in p["lists"][col]:
                    out[f"{col}: {item}"] = items.map(lambda s, item=item: float(item in s))
            elif col in p["categorical"]:
                out[col] = features[col].map(_category, na_action="ignore")
            else:
                out[col] = features[col]
        return pd.DataFrame(out, index=features.index)

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.policy_columns() if c not in features.columns]
        if missing:
            raise KeyError(f"California house prices: columns {missing} are missing from the rows to transform")
        return super().transform(self._apply(features))

    def policy_columns(self) -> list[str]:
        p = self.policy
        return [*p["dates"], *p["mixed"], *p["lists"], *p["categorical"]]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "max_items": self.max_items, "free_text_ratio": self.free_text_ratio,
                "policy": self.policy}  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CaliforniaPreprocessor:
        state = dict(state)
        pre = cls(state.pop("log_skewed"), state.pop("clip_quantile"), state.pop("max_categories"),
                  state.pop("max_items"), state.pop("free_text_ratio"))  # fmt: skip
        pre.policy = state.pop("policy")
        pre.state = state
        return pre


class CaliforniaHousePrices(HousePrices):
    """California house prices as ``(B, in_features)`` features and ``(B, 1)`` log prices, with
    ``HousePrices``' folds, held-out test loader and prediction of Kaggle's test rows.

    Args:
        data_dir: folder with ``train.csv`` and ``test.csv``.
        max_categories: indicators per category column (the most frequent values).
        max_items: indicators per list column (the most frequent items).
        Others: as ``HousePrices``.
    """

    id_col, target = ID, TARGET

    def __init__(
        self,
        data_dir: str = "data/california_house_prices",
        batch_size: int = 256,
        fold: int | None = None,
        folds_file: str | None = None,
        val_size: float = 0.2,
        seed: int = 0,
        log_skewed: float | None = 0.75,
        clip_quantile: float = 0.01,
        max_categories: int = 30,
        max_items: int = 20,
        num_workers: int = 0,
    ) -> None:
        super().__init__(data_dir, batch_size, fold, folds_file, val_size, seed, log_skewed, clip_quantile,
                         num_workers)  # fmt: skip
        self.save_hyperparameters()

    def find_files(self) -> tuple[Path, Path]:
        return find_california_files(self.data_dir)

    def make_preprocessor(self) -> CaliforniaPreprocessor:
        hp = self.hparams
        return CaliforniaPreprocessor(hp.log_skewed, hp.clip_quantile, hp.max_categories, hp.max_items)
