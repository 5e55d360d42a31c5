"""Kaggle "CIFAR-10 - Object Recognition in Images" (the course's lecture 38).

Raw files: ``trainLabels.csv`` (``id,label`` with class names), ``train/<id>.png`` and
``test/<id>.png`` (``.jpg`` works too), ``sampleSubmission.csv``. Metric: accuracy.
Submission ``id,label`` with class names.

As the course does, training rows are the images present in ``train/``: the course's tiny
copy ships Kaggle's full ``trainLabels.csv`` (50,000 ids) with 1,000 images, so ids listed
without an image are left out and counted in a note, while an image without a label row is an
error. Without ``sampleSubmission.csv`` the submission is checked against the ids of ``test/``
(sorted numerically) and the header ``id,label``. The files are read by
``datamodules.kaggle_images.read_cifar10``; the folds train ``datamodules.KaggleCIFAR10``.
"""

from __future__ import annotations

from pathlib import Path

from competitions.kit import Competition, Prepared
from datamodules.kaggle_images import read_cifar10


class CIFAR10(Competition):
    slug = "cifar-10"
    metric = "accuracy"
    score_key = "test/acc"
    files = {"labels": ("trainLabels.csv",)}
    folders = ("train", "test")
    sample_names = ("sampleSubmission.csv", "sample_submission.csv")
    header = ["id", "label"]

    def read(self, data_dir: Path, found: dict[str, Path], sample: Path | None) -> Prepared:
        t = read_cifar10(data_dir, decode=True)
        return Prepared(t.train, t.test, t.header, t.classes, t.notes)


COMPETITION = CIFAR10()
