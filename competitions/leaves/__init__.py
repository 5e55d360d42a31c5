"""Kaggle "Classify Leaves" (the course's competition of lecture 30/43): 176 leaf species.

Raw files: ``train.csv`` (``image,label``; ``image`` is a path such as ``images/0.jpg``),
``test.csv`` (``image``), ``images/`` and ``sample_submission.csv`` (``image,label``).
Metric: accuracy. Submission ``image,label`` with class names. The class names are the sorted
labels of ``train.csv``; they are saved in every checkpoint (the data module's state), so
prediction maps outputs to names without reading any file again.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from competitions.kit import Competition, Prepared, Problems
from competitions.kit.images import bad_images, check_labels, read_table


class Leaves(Competition):
    slug = "classify-leaves"
    metric = "accuracy"
    score_key = "test/acc"
    files = {"train": ("train.csv",), "test": ("test.csv",)}
    folders = ("images",)
    header = ["image", "label"]

    def read(self, data_dir: Path, found: dict[str, Path], sample: Path | None) -> Prepared:
        train, test = read_table(found["train"]), read_table(found["test"])
        problems = Problems()
        check_labels(train, "train.csv", "image", "label", problems)
        problems.add_each("test.csv: missing column", [] if "image" in test.columns else ["image"])
        if "image" in test.columns:
            problems.add_each("test.csv: duplicate image", test["image"][test["image"].duplicated()].unique())
            if sample is not None:
                order = read_table(sample).iloc[:, 0].tolist()
                if order != test["image"].tolist():
                    problems.add(f"{sample.name} lists other images, or another order, than test.csv")
        names = [*train.get("image", []), *test.get("image", [])]
        problems.add_each("images that are missing or do not decode", bad_images([data_dir / n for n in names]))
        problems.raise_if_any(str(data_dir))
        classes = sorted(set(train["label"]))
        header = list(read_table(sample).columns) if sample else self.header
        return Prepared(
            pd.DataFrame({"id": train["image"], "label": train["label"],
                          "path": [str(data_dir / n) for n in train["image"]]}),
            pd.DataFrame({"id": test["image"], "path": [str(data_dir / n) for n in test["image"]]}),
            header, classes,
        )  # fmt: skip


COMPETITION = Leaves()
