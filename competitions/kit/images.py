"""Image competitions: checking image files, and the data module of one fold.

``KaggleImages`` reads the index that ``prepare`` wrote (``train_index.csv`` with
``id,label,path``, ``test_index.csv``, ``folds.csv``) and serves fold ``fold`` through the zoo's
``ImageFiles`` dataset and named albumentations pipelines. Its class names are part of its
state, which Lightning saves in every checkpoint: prediction takes them from the checkpoint,
never from a file read later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from competitions.kit.problems import Problems
from datamodules import augment
from datamodules.base import ZooDataModule
from datamodules.image_folder import ImageFiles


def _decode_problem(path: Path) -> str | None:
    try:
        with Image.open(path) as im:
            im.draft("RGB", (64, 64))  # JPEGs decode at reduced scale: every byte is still read
            im.load()
    except FileNotFoundError:
        return f"{path.name} (missing)"
    except Exception as e:  # PIL raises several types for damaged files
        return f"{path.name} ({type(e).__name__}: {e})"
    return None


def bad_images(paths: Sequence[Path]) -> list[str]:
    """``name (reason)`` for every path that is missing or does not decode completely."""
    with ThreadPoolExecutor(max_workers=4) as pool:  # PIL releases the GIL while decoding
        return [p for p in pool.map(_decode_problem, paths) if p]


class KaggleImages(ZooDataModule):
    """Fold ``fold`` of a prepared image competition: the other folds train, this one
    validates (and is the test set of ``zoo.fit``, so its test metrics are the fold's score);
    ``predict_dataloader`` serves the competition's test images, ids in ``predict_ids``.

    Args:
        index_dir: the competition's work folder, as written by ``prepare``.
        fold: the held-out fold.
        image_size: side length fed to the model.
        augment: training pipeline of ``datamodules.augment``; eval_augment: for val/test.
        mean, std: per-channel normalisation in [0, 1] units (``None``: only scale to [0, 1]).
        cache: decode every image once, up front (small images such as CIFAR's).
        seed: seed of the augmentation stream.
    """

    in_channels = 3

    def __init__(
        self,
        index_dir: str,
        fold: int = 0,
        image_size: int = 32,
        augment: str = "flip",
        eval_augment: str = "none",
        mean: tuple[float, float, float] | None = None,
        std: tuple[float, float, float] | None = None,
        cache: bool = False,
        seed: int = 0,
        batch_size: int = 128,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory)
        self.save_hyperparameters()
        self.index_dir = Path(index_dir)
        self.classes: list[str] | None = None

    def _classes(self) -> list[str]:
        if self.classes is None:
            self.classes = list(json.loads((self.index_dir / "prepared.json").read_text())["classes"])
        return self.classes

    @property
    def num_classes(self) -> int:  # read by zoo.fit to size the model's head
        return len(self._classes())

    def _transform(self, name: str) -> Any:
        hp = self.hparams
        return augment.build(name, hp.image_size, hp.mean, hp.std, seed=hp.seed)

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage != "predict":
            train = pd.read_csv(self.index_dir / "train_index.csv", dtype=str, keep_default_na=False)
            folds = pd.read_csv(self.index_dir / "folds.csv", dtype={"id": str}).set_index("id")["fold"]
            fold = train["id"].map(folds)
            index = {c: i for i, c in enumerate(self._classes())}
            labels = train["label"].map(index)
            if fold.isna().any() or labels.isna().any():
                raise ValueError(f"{self.index_dir}: the index, folds and classes disagree; rerun prepare")
            tr, va = (fold != hp.fold).to_numpy(), (fold == hp.fold).to_numpy()
            paths = train["path"].to_numpy()
            self._train = ImageFiles(paths[tr].tolist(), labels[tr].tolist(), self._transform(hp.augment), hp.cache)
            self._val = ImageFiles(paths[va].tolist(), labels[va].tolist(), self._transform(hp.eval_augment), hp.cache)
            self._test = self._val
        if stage in (None, "predict"):
            test = pd.read_csv(self.index_dir / "test_index.csv", dtype=str, keep_default_na=False)
            self._predict = ImageFiles(test["path"].tolist(), None, self._transform(hp.eval_augment))
            self.predict_ids = test["id"].tolist()

    def predict_dataloader(self):
        return self.loader(self._predict)

    def state_dict(self) -> dict[str, Any]:
        return {"classes": self._classes()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.classes = list(state["classes"])


def check_labels(
    frame: pd.DataFrame, where: str, id_col: str, label_col: str, problems: Problems,
    classes: Sequence[str] | None = None,
) -> None:  # fmt: skip
    """Required columns, unique ids, no blank label and (given ``classes``) no unknown one."""
    missing = [c for c in (id_col, label_col) if c not in frame.columns]
    problems.add_each(f"{where}: missing column", missing)
    if missing:
        return
    problems.add_each(f"{where}: duplicate {id_col}", frame[id_col][frame[id_col].duplicated()].unique())
    blank = frame[label_col].str.strip() == ""
    problems.add_each(f"{where}: blank {label_col}, rows with {id_col}", frame[id_col][blank])
    if classes is not None:
        unknown = ~frame[label_col].isin(list(classes)) & ~blank
        pairs = [f"{i}={lab!r}" for i, lab in zip(frame[id_col][unknown], frame[label_col][unknown])]
        problems.add_each(f"{where}: unknown {label_col} (expected one of {len(classes)} classes)", pairs)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV with every cell as text (ids stay ``"007"``, a label ``"NA"`` stays a label)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_rows(files: Sequence[Path], sample: Path | None, problems: Problems, where: str) -> pd.DataFrame:
    """``id, path`` of the test images; in the sample submission's order when there is one,
    whose ids must then match the images one to one."""
    by_id = {p.stem: p for p in files}
    if sample is None:
        return pd.DataFrame({"id": list(by_id), "path": [str(p) for p in by_id.values()]})
    ids = read_table(sample).iloc[:, 0].tolist()
    problems.add_each(f"{sample.name}: ids without an image in {where}", [i for i in ids if i not in by_id])
    problems.add_each(f"{where}: images not in {sample.name}", sorted(set(by_id) - set(ids)))
    return pd.DataFrame({"id": ids, "path": [str(by_id.get(i, "")) for i in ids]})
