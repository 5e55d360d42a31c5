"""Kaggle "California House Prices" (the course's lecture 15, its 2021 in-class competition).

Raw files: ``train.csv`` (``Id``, ``Address``, ``Sold Price``, ``Summary`` and 37 more
columns), ``test.csv`` (the same without ``Sold Price``) and ``sample_submission.csv``
(``Id,Sold Price``). Metric: RMSE of log prices, as for the Ames competition. The checks
(``Id`` unique, ``Sold Price`` a positive number, the test file's columns) are the Ames
competition's; features and targets come from ``datamodules.CaliforniaHousePrices``, whose
column policy handles free text, dates, lists and mixed columns.
"""

from __future__ import annotations

from competitions.house_prices import HousePrices
from datamodules.california_house_prices import ID, TARGET


class CaliforniaHousePrices(HousePrices):
    slug = "california-house-prices"
    files = {"train": ("train.csv",), "test": ("test.csv",)}
    id_col, target = ID, TARGET
    header = [ID, TARGET]


COMPETITION = CaliforniaHousePrices()
