"""Kaggle "Dog Breed Identification" (ImageNet Dogs; the course's lecture 40).

Raw files: ``labels.csv`` (``id,breed``; 120 breeds), ``train/<id>.jpg``, ``test/<id>.jpg`` and
``sample_submission.csv`` (``id`` then one column per breed). Metric: multi-class log loss.
Submission: ``id`` and the predicted probability of every breed, in the sample's column order.
The breeds are the sample's columns (a breed in ``labels.csv`` outside them is an error);
without a sample they are the sorted breeds of ``labels.csv`` and the test ids those of ``test/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from competitions.kit import Competition, Prepared, Problems
from competitions.kit.images import bad_images, check_labels, read_table, test_rows
from datamodules.image_folder import list_images


class DogBreeds(Competition):
    slug = "dog-breed-identification"
    metric = "log loss"
    score_key = "test/loss"  # cross-entropy of the held-out fold = the multi-class log loss
    files = {"labels": ("labels.csv",)}
    folders = ("train", "test")
    header = ["id"]  # then the breeds, when there is no sample submission

    def read(self, data_dir: Path, found: dict[str, Path], sample: Path | None) -> Prepared:
        labels_csv = found["labels"]
        table = read_table(labels_csv)
        problems = Problems()
        breeds = list(read_table(sample).columns[1:]) if sample else None
        check_labels(table, labels_csv.name, "id", "breed", problems, breeds)
        ids = table["id"].tolist() if "id" in table.columns else []
        paths = [data_dir / "train" / f"{i}.jpg" for i in ids]
        train_files, test_files = list_images(data_dir / "train"), list_images(data_dir / "test")
        problems.add_each(f"train/: images without a row in {labels_csv.name}",
                          sorted({p.name for p in train_files} - {p.name for p in paths}))  # fmt: skip
        problems.add_each("images that are missing or do not decode", bad_images([*paths, *test_files]))
        test = test_rows(test_files, sample, problems, "test/")
        problems.raise_if_any(str(data_dir))
        classes = breeds or sorted(set(table["breed"]))
        train = pd.DataFrame({"id": ids, "label": table["breed"], "path": [str(p) for p in paths]})
        header = list(read_table(sample).columns) if sample else [*self.header, *classes]
        return Prepared(train, test, header, classes)

    def submission(
        self, ids: list[str], preds: np.ndarray, classes: list[str] | None, header: list[str]
    ) -> pd.DataFrame:
        assert classes is not None
        column = {c: i for i, c in enumerate(classes)}
        missing = [b for b in header[1:] if b not in column]
        if missing:
            raise ValueError(f"the model has no output for the sample's breeds {missing[:5]}; refit after prepare")
        table = pd.DataFrame(preds[:, [column[b] for b in header[1:]]], columns=header[1:])
        table.insert(0, header[0], ids)
        return table


COMPETITION = DogBreeds()
