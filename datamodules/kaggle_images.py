"""Kaggle image competitions read as their files lie: Classify Leaves, Dog Breed Identification
and the CIFAR-10 competition's folders; one reader per layout, used by the data modules here and
by ``competitions`` (whose ``prepare`` adds a decode check of every image).

* ``classify-leaves``: ``train.csv`` (``image,label``; ``image`` a path such as ``images/0.jpg``),
  ``test.csv`` (``image``), ``images/``, ``sample_submission.csv`` (``image,label``);
* ``dog-breed-identification``: ``labels.csv`` (``id,breed``), ``train/<id>.jpg``,
  ``test/<id>.jpg``, ``sample_submission.csv`` (``id`` then one column per breed);
* ``cifar-10``: ``trainLabels.csv`` (``id,label``), ``train/<id>.png``, ``test/<id>.png``,
  ``sampleSubmission.csv``; the training rows are the images present (the course's tiny copy
  lists 50,000 ids for 1,000 images).

Every problem of a layout (missing column, duplicate id, unknown label, a path outside
``data_dir``, a missing image) is collected into one ``DataError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from datamodules import augment as augmentations
from datamodules.base import FoldedData, read_csv
from datamodules.cifar10 import CLASSES as CIFAR_CLASSES
from datamodules.image_folder import ImageFiles, list_images
from zoo.core.errors import ConfigError
from zoo.core.images import decode_problem
from zoo.core.problems import DataError, Problems


@dataclass
class ImageTable:
    """A layout as read: ``train`` has ``id, label, path``; ``test`` has ``id, path`` in the
    submission's row order; ``header`` is the submission's; ``sample`` the sample submission."""

    train: pd.DataFrame
    test: pd.DataFrame
    header: list[str]
    classes: list[str]
    sample: Path | None = None
    notes: list[str] = field(default_factory=list)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV with every cell as text (ids stay ``"007"``, a label ``"NA"`` stays a label)."""
    return read_csv(path, dtype=str, keep_default_na=False)


def bad_images(paths: Sequence[Path]) -> list[str]:
    """``name (reason)`` for every path that is missing or does not decode completely."""
    with ThreadPoolExecutor(max_workers=4) as pool:  # PIL releases the GIL while decoding
        return [p for p in pool.map(decode_problem, paths) if p]


def check_images(paths: Sequence[Path], decode: bool, problems: Problems) -> None:
    """Every image exists (and, with ``decode``, decodes: slow, so ``prepare`` does it once)."""
    if decode:
        problems.add_each("images that are missing or do not decode", bad_images(paths))
    else:
        problems.add_each("images that are missing", [p.name for p in paths if not p.is_file()])


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


def inside(data_dir: Path, names: Sequence[str], where: str, problems: Problems, fmt: str = "{}") -> list[Path]:
    """``data_dir / fmt.format(name)`` for each name; a path that leaves ``data_dir`` (``..``, an
    absolute path, a link) is a problem naming its CSV line, so a CSV cannot point elsewhere."""
    root, paths, outside = data_dir.resolve(), [], []
    for line, name in enumerate(names, start=2):  # line 1 is the header
        path = data_dir / fmt.format(name)
        if "\0" not in name and path.resolve().is_relative_to(root):  # a NUL byte: no file name, refused too
            paths.append(path)
        else:
            outside.append(f"line {line} ({name!r})")
    problems.add_each(f"{where}: paths outside {data_dir} (refused)", outside)
    return paths


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


def _first(folder: Path, names: Sequence[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _required(data_dir: Path, files: Sequence[str], folders: Sequence[str], slug: str) -> None:
    missing = [f for f in files if not (data_dir / f).is_file()] + [f"{d}/" for d in folders
                                                                     if not (data_dir / d).is_dir()]  # fmt: skip
    if missing:
        raise FileNotFoundError(f"{slug}: missing in {data_dir}: {', '.join(missing)}; download the data from "
                                f"https://www.kaggle.com/competitions/{slug}/data and unpack it there")  # fmt: skip


def read_leaves(data_dir: Path, decode: bool = False) -> ImageTable:
    """Classify Leaves; the classes are the sorted labels of ``train.csv``."""
    _required(data_dir, ("train.csv", "test.csv"), ("images",), "classify-leaves")
    train, test = read_table(data_dir / "train.csv"), read_table(data_dir / "test.csv")
    sample = _first(data_dir, ("sample_submission.csv",))
    problems = Problems()
    check_labels(train, "train.csv", "image", "label", problems)
    problems.add_each("test.csv: missing column", [] if "image" in test.columns else ["image"])
    if "image" in test.columns:
        problems.add_each("test.csv: duplicate image", test["image"][test["image"].duplicated()].unique())
        if sample is not None and read_table(sample).iloc[:, 0].tolist() != test["image"].tolist():
            problems.add(f"{sample.name} lists other images, or another order, than test.csv")
    train_paths = inside(data_dir, train.get("image", []), "train.csv", problems)
    test_paths = inside(data_dir, test.get("image", []), "test.csv", problems)
    check_images([*train_paths, *test_paths], decode, problems)
    problems.raise_if_any(str(data_dir))
    return ImageTable(
        pd.DataFrame({"id": train["image"], "label": train["label"], "path": list(map(str, train_paths))}),
        pd.DataFrame({"id": test["image"], "path": list(map(str, test_paths))}),
        list(read_table(sample).columns) if sample else ["image", "label"],
        sorted(set(train["label"])), sample,
    )  # fmt: skip


def read_dog_breeds(data_dir: Path, decode: bool = False) -> ImageTable:
    """Dog Breed Identification; the breeds are the sample's columns (a breed of ``labels.csv``
    outside them is an error), else the sorted breeds of ``labels.csv``."""
    _required(data_dir, ("labels.csv",), ("train", "test"), "dog-breed-identification")
    table = read_table(data_dir / "labels.csv")
    sample = _first(data_dir, ("sample_submission.csv",))
    problems = Problems()
    breeds = list(read_table(sample).columns[1:]) if sample else None
    check_labels(table, "labels.csv", "id", "breed", problems, breeds)
    ids = table["id"].tolist() if "id" in table.columns else []
    paths = inside(data_dir, ids, "labels.csv", problems, fmt="train/{}.jpg")
    train_files, test_files = list_images(data_dir / "train"), list_images(data_dir / "test")
    problems.add_each("train/: images without a row in labels.csv",
                      sorted({p.name for p in train_files} - {p.name for p in paths}))  # fmt: skip
    check_images([*paths, *test_files], decode, problems)
    test = test_rows(test_files, sample, problems, "test/")
    problems.raise_if_any(str(data_dir))
    classes = breeds or sorted(set(table["breed"]))
    train = pd.DataFrame({"id": ids, "label": table["breed"], "path": [str(p) for p in paths]})
    header = list(read_table(sample).columns) if sample else ["id", *classes]
    return ImageTable(train, test, header, classes, sample)


def read_cifar10(data_dir: Path, decode: bool = False) -> ImageTable:
    """The CIFAR-10 competition: the images present in ``train/``, labelled from
    ``trainLabels.csv`` (ids without an image are left out, and counted in a note); the test
    ids are the sample's, else those of ``test/`` in numeric order."""
    _required(data_dir, ("trainLabels.csv",), ("train", "test"), "cifar-10")
    table = read_table(data_dir / "trainLabels.csv")
    sample = _first(data_dir, ("sampleSubmission.csv", "sample_submission.csv"))
    problems = Problems()
    check_labels(table, "trainLabels.csv", "id", "label", problems, CIFAR_CLASSES)
    train_files, test_files = list_images(data_dir / "train"), list_images(data_dir / "test")
    label_of = dict(zip(table.get("id", []), table.get("label", [])))
    problems.add_each("train/: images without a row in trainLabels.csv",
                      [p.name for p in train_files if p.stem not in label_of])  # fmt: skip
    notes = []
    unused = len(label_of) - sum(p.stem in label_of for p in train_files)
    if unused:
        notes.append(f"{unused} of the {len(label_of)} ids in trainLabels.csv have no image in train/ "
                     "and are left out (the training set is the images present, as in the course)")  # fmt: skip
    if decode:
        check_images([*train_files, *test_files], decode, problems)
    test = test_rows(test_files, sample, problems, "test/")
    problems.raise_if_any(str(data_dir))
    train = pd.DataFrame({"id": [p.stem for p in train_files], "label": [label_of[p.stem] for p in train_files],
                          "path": [str(p) for p in train_files]})  # fmt: skip
    header = list(read_table(sample).columns) if sample else ["id", "label"]
    return ImageTable(train, test, header, list(CIFAR_CLASSES), sample, notes)


class KaggleImages(FoldedData):
    """A Kaggle image layout as ``(B, 3, image_size, image_size)`` floats and ``(B,)`` labels;
    subclasses name the reader. Validation rows are fold ``fold`` of ``folds_file`` (``id,fold``,
    as the competitions save it), or else a seeded ``val_size`` split; the test loader serves
    the same rows (the competition's test images have no labels), and ``predict_dataloader``
    the competition's test images, their ids in ``predict_ids``.

    ``classes`` (the names of the model's outputs, in order) and the evaluation preprocessing
    (``image_size``, ``eval_augment``, ``mean``, ``std``) are plain attributes; the classes are
    this module's state, which Lightning saves in every checkpoint, so a prediction maps outputs
    to names without reading any file again.

    Args:
        data_dir: the competition's files, unpacked as Kaggle ships them.
        fold, folds_file: the held-out fold and the saved folds.
        val_size, seed: the validation split when no folds are given (count or fraction).
        image_size: side length fed to the model.
        augment: training pipeline of ``datamodules.augment``; eval_augment: validation/test/predict.
        mean, std: per-channel normalisation in [0, 1] units (``None``: only scale to [0, 1]).
        cache: decode every image once, up front (small images such as CIFAR's).
    """

    in_channels = 3
    read: Callable[[Path, bool], ImageTable]

    def __init__(
        self,
        data_dir: str = "data",
        fold: int | None = None,
        folds_file: str | None = None,
        val_size: int | float = 0.2,
        seed: int = 0,
        image_size: int = 224,
        augment: str = "flip",
        eval_augment: str = "none",
        mean: tuple[float, float, float] | None = None,
        std: tuple[float, float, float] | None = None,
        cache: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory, fold=fold, folds_file=folds_file)
        self.save_hyperparameters()
        for name in (augment, eval_augment):  # fail at parse time, not after reading the data
            if name not in augmentations.PIPELINES:
                raise ConfigError(f"unknown augmentation {name!r}; choose one of {sorted(augmentations.PIPELINES)}")
        self.data_dir = Path(data_dir).expanduser()
        self.image_size, self.eval_augment, self.mean, self.std = image_size, eval_augment, mean, std
        self.classes: list[str] | None = None  # from the data, or from a checkpoint
        self._table: ImageTable | None = None

    def table(self) -> ImageTable:
        if self._table is None:
            self._table = type(self).read(self.data_dir)
            if self.classes is None:
                self.classes = list(self._table.classes)
        return self._table

    @property
    def num_classes(self) -> int:  # read by zoo.fit to size the model's head, before setup
        self.table()
        return len(self.classes)

    @property
    def preprocessing(self) -> dict:
        """Recorded in checkpoints by the classification task, for ``zoo predict`` on image files."""
        return augmentations.eval_preprocessing(self.eval_augment, self.image_size, self.mean, self.std)

    def fold_rows(self) -> tuple[list[str], list[str]]:
        """The training rows' ids and labels, for ``zoo.fit --folds``."""
        table = self.table()
        return table.train["id"].tolist(), table.train["label"].tolist()

    def _transform(self, name: str) -> Any:
        return augmentations.build(name, self.image_size, self.mean, self.std, seed=self.hparams.seed)

    def setup(self, stage: str | None = None) -> None:
        table, hp = self.table(), self.hparams
        if stage != "predict":
            index = {c: i for i, c in enumerate(self.classes)}
            labels = table.train["label"].map(index)
            if labels.isna().any():
                unknown = [f"{i}={lab!r}" for i, lab in zip(table.train["id"][labels.isna()],
                                                             table.train["label"][labels.isna()])]  # fmt: skip
                raise DataError(str(self.data_dir), [f"labels outside the model's {len(index)} classes: "
                                                     + ", ".join(unknown[:20])])  # fmt: skip
            tr, va = self.split(table.train["id"].tolist(), hp.val_size, hp.seed)
            paths, labels = table.train["path"].to_numpy(), labels.astype(int).to_numpy()
            self._train = ImageFiles(paths[tr].tolist(), labels[tr].tolist(), self._transform(hp.augment), hp.cache)
            self._val = ImageFiles(paths[va].tolist(), labels[va].tolist(), self._transform(self.eval_augment),
                                   hp.cache)  # fmt: skip
            self._test = self._val
        if stage in (None, "predict"):
            self._predict = ImageFiles(table.test["path"].tolist(), None, self._transform(self.eval_augment))
            self.predict_ids = table.test["id"].tolist()

    def predict_dataloader(self):
        return self.loader(self._predict)

    def state_dict(self) -> dict[str, Any]:
        self.table()
        return {"classes": list(self.classes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.classes = list(state["classes"])


class Leaves(KaggleImages):
    """Kaggle "Classify Leaves" (the course's lecture 30/43): 176 leaf species."""

    read = staticmethod(read_leaves)


class DogBreeds(KaggleImages):
    """Kaggle "Dog Breed Identification" (ImageNet Dogs; the course's lecture 40): 120 breeds."""

    read = staticmethod(read_dog_breeds)


class KaggleCIFAR10(KaggleImages):
    """The Kaggle CIFAR-10 competition's folders (the course's lecture 39), with folds and the
    unlabelled test images; ``datamodules.CIFAR10`` reads the same folders for plain training."""

    read = staticmethod(read_cifar10)
