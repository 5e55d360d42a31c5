"""Kaggle "CIFAR-10 - Object Recognition in Images" (the course's lecture 38).

Raw files: ``trainLabels.csv`` (``id,label`` with class names), ``train/<id>.png`` and
``test/<id>.png`` (``.jpg`` works too), ``sampleSubmission.csv``. Metric: accuracy.
Submission ``id,label`` with class names.

As the course does, training rows are the images present in ``train/``: the course's tiny
copy ships Kaggle's full ``trainLabels.csv`` (50,000 ids) with 1,000 images, so ids listed
without an image are left out and counted in a note, while an image without a label row is an
error. Without ``sampleSubmission.csv`` the submission is checked against the ids of ``test/``
(sorted numerically) and the header ``id,label``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from competitions.kit import Competition, Prepared, Problems
from competitions.kit.images import bad_images, check_labels, read_table, test_rows
from datamodules.cifar10 import CLASSES
from datamodules.image_folder import list_images


class CIFAR10(Competition):
    slug = "cifar-10"
    metric = "accuracy"
    score_key = "test/acc"
    files = {"labels": ("trainLabels.csv",)}
    folders = ("train", "test")
    sample_names = ("sampleSubmission.csv", "sample_submission.csv")
    header = ["id", "label"]

    def read(self, data_dir: Path, found: dict[str, Path], sample: Path | None) -> Prepared:
        labels_csv = found["labels"]
        table = read_table(labels_csv)
        problems = Problems()
        check_labels(table, labels_csv.name, "id", "label", problems, CLASSES)
        train_files, test_files = list_images(data_dir / "train"), list_images(data_dir / "test")
        notes = []
        label_of = dict(zip(table.get("id", []), table.get("label", [])))
        problems.add_each(f"train/: images without a row in {labels_csv.name}",
                          [p.name for p in train_files if p.stem not in label_of])  # fmt: skip
        unused = len(label_of) - sum(p.stem in label_of for p in train_files)
        if unused:
            notes.append(f"{unused} of the {len(label_of)} ids in {labels_csv.name} have no image in train/ "
                         "and are left out (the training set is the images present, as in the course)")  # fmt: skip
        problems.add_each("images that are missing or do not decode", bad_images([*train_files, *test_files]))
        test = test_rows(test_files, sample, problems, "test/")
        problems.raise_if_any(str(data_dir))
        train = pd.DataFrame({"id": [p.stem for p in train_files], "label": [label_of[p.stem] for p in train_files],
                              "path": [str(p) for p in train_files]})  # fmt: skip
        header = list(read_table(sample).columns) if sample else self.header
        return Prepared(train, test, header, list(CLASSES), notes)


COMPETITION = CIFAR10()
