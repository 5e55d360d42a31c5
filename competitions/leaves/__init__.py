"""Kaggle "Classify Leaves" (the course's competition of lecture 30/43): 176 leaf species.

Raw files: ``train.csv`` (``image,label``; ``image`` is a path such as ``images/0.jpg``),
``test.csv`` (``image``), ``images/`` and ``sample_submission.csv`` (``image,label``), read by
``datamodules.kaggle_images.read_leaves``; the folds train ``datamodules.Leaves``.
Metric: accuracy. Submission ``image,label`` with class names. The class names are the sorted
labels of ``train.csv``; they are saved in every checkpoint (the data module's state), so
prediction maps outputs to names without reading any file again.
"""

from __future__ import annotations

from pathlib import Path

from competitions.kit import Competition, Prepared
from datamodules.kaggle_images import read_leaves


class Leaves(Competition):
    slug = "classify-leaves"
    metric = "accuracy"
    score_key = "test/acc"
    files = {"train": ("train.csv",), "test": ("test.csv",)}
    folders = ("images",)
    header = ["image", "label"]

    def read(self, data_dir: Path, found: dict[str, Path], sample: Path | None) -> Prepared:
        t = read_leaves(data_dir, decode=True)
        return Prepared(t.train, t.test, t.header, t.classes, t.notes)


COMPETITION = Leaves()
