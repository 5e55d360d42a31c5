"""Kaggle "Dog Breed Identification" (ImageNet Dogs; the course's lecture 40).

Raw files: ``labels.csv`` (``id,breed``; 120 breeds), ``train/<id>.jpg``, ``test/<id>.jpg`` and
``sample_submission.csv`` (``id`` then one column per breed). Metric: multi-class log loss.
Submission: ``id`` and the predicted probability of every breed, in the sample's column order.
The files are read by ``datamodules.kaggle_images.read_dog_breeds``; the folds train
``datamodules.DogBreeds``.
The breeds are the sample's columns (a breed in ``labels.csv`` outside them is an error);
without a sample they are the sorted breeds of ``labels.csv`` and the test ids those of ``test/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from competitions.kit import Competition, Prepared
from datamodules.kaggle_images import read_dog_breeds
from zoo.core.errors import ConfigError


class DogBreeds(Competition):
    slug = "dog-breed-identification"
    metric = "log loss"
    score_key = "test/loss"  # cross-entropy of the held-out fold = the multi-class log loss
    files = {"labels": ("labels.csv",)}
    folders = ("train", "test")
    header = ["id"]  # then the breeds, when there is no sample submission

    def read(self, data_dir: Path, found: dict[str, Path], sample: Path | None) -> Prepared:
        t = read_dog_breeds(data_dir, decode=True)
        return Prepared(t.train, t.test, t.header, t.classes, t.notes)

    def submission(
        self, ids: list[str], preds: np.ndarray, classes: list[str] | None, header: list[str]
    ) -> pd.DataFrame:
        assert classes is not None
        column = {c: i for i, c in enumerate(classes)}
        missing = [b for b in header[1:] if b not in column]
        if missing:
            raise ConfigError(f"the model has no output for the sample's breeds {missing[:5]}; refit after prepare")
        table = pd.DataFrame(preds[:, [column[b] for b in header[1:]]], columns=header[1:])
        table.insert(0, header[0], ids)
        return table


COMPETITION = DogBreeds()
