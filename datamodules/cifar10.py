"""CIFAR-10 (Krizhevsky, 2009, "Learning multiple layers of features from tiny images"):
60,000 32x32 colour images of 10 classes, 50,000 for training and 10,000 for testing.

Read from either layout:

* the original python pickles, ``cifar-10-batches-py/{data_batch_1..5, test_batch}`` (as
  torchvision lays them out; downloaded from Toronto, md5-checked, when nowhere on disk),
  read by a restricted unpickler that builds only dicts, lists, strings, numbers and numpy
  arrays, so a crafted batch file cannot run code;
* the Kaggle competition's folders (the course's lecture 39), ``train/<id>.<png|jpg>`` with
  ``trainLabels.csv`` (``id,label`` class names), and optionally a labelled test set
  ``test/<id>.<ext>`` with ``testLabels.csv``. Only the images present are used, labelled
  from the CSV (d2l's tiny copy lists all 50,000 ids for 1,000 images).
"""

from __future__ import annotations

import codecs
import csv
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.utilities import rank_zero_warn

from datamodules import augment as augmentations
from datamodules.base import FoldedData, read_text
from datamodules.download import Found, download, extract, find_data
from datamodules.image_folder import ImageFiles, list_images
from zoo.core.errors import ConfigError, ZooError
from zoo.core.images import read_rgb

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"  # as torchvision lists it
BATCHES_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# per-channel mean and std of the 50,000 training images, in [0, 1]
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


class CIFARFormatError(ZooError, ValueError):
    """A file that is not what the CIFAR-10 layout promises."""


try:  # numpy 2 moved its internals to numpy._core; pickles name either
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes (protocol 2), limited to latin-1."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"refused codec {encoding!r}")
    return codecs.encode(text, "latin1")


#: every global a CIFAR batch needs: numpy array reconstruction and plain builtins
ALLOWED: dict[tuple[str, str], Any] = {
    **{(m, "_reconstruct"): _multiarray._reconstruct for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "_frombuffer"): _numeric._frombuffer for m in ("numpy.core.numeric", "numpy._core.numeric")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1,
    **{(m, t.__name__): t for m in ("builtins", "__builtin__") for t in (dict, list, bytes, str, int)},
}


class _BatchUnpickler(pickle.Unpickler):
    """Builds only what ``ALLOWED`` names; any other global (a function call a crafted file
    would use to run code) is refused before it is looked up."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: a CIFAR batch holds only dicts, lists, strings, "
                "numbers and numpy arrays"
            )
        return ALLOWED[(module, name)]


def read_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR batch as ``(N, 32, 32, 3)`` uint8 images and ``(N,)`` int64 labels."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            d = _BatchUnpickler(f, encoding="latin1").load()  # written by Python 2
    # LookupError: a damaged codec name in the pickle's _codecs.encode call
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError, IndexError,
            LookupError) as e:  # fmt: skip
        raise CIFARFormatError(f"{path}: not a readable CIFAR pickle ({e})") from e
    if not isinstance(d, dict):
        raise CIFARFormatError(f"{path}: expected a dict with 'data' and 'labels', got {type(d).__name__}")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise CIFARFormatError(f"{path}: keys {sorted(d)} lack 'data' or 'labels'")
    data, labels = np.asarray(d["data"]), np.asarray(d["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CIFARFormatError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (len(data),):
        raise CIFARFormatError(f"{path}: {len(data)} images but {labels.size} labels")
    bad = np.flatnonzero((labels < 0) | (labels >= len(CLASSES)))
    if bad.size:
        raise CIFARFormatError(f"{path}: labels outside 0..9: {labels[bad[0]]} at item {bad[0]} "
                               f"({bad.size} in all; min {labels.min()}, max {labels.max()})")  # fmt: skip
    # rows hold the red, green and blue planes one after another
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_label_csv(path: Path) -> dict[str, int]:
    """A Kaggle ``id,label`` file as ``{id: class index}``."""
    index = {name: i for i, name in enumerate(CLASSES)}
    with io.StringIO(read_text(path), newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None or [h.strip() for h in header[:2]] != ["id", "label"]:
            raise CIFARFormatError(f"{path}: header {header} should start with 'id,label'")
        labels = {}
        for line, row in enumerate(rows, start=2):
            if len(row) < 2 or row[1] not in index:
                raise CIFARFormatError(f"{path}, line {line}: {row} is not 'id,<one of {', '.join(CLASSES)}>'")
            labels[row[0].strip()] = index[row[1]]
    return labels


def read_kaggle_folder(folder: Path, labels_csv: Path) -> tuple[list[Path], list[int]]:
    """The images present in ``folder`` and their labels from ``labels_csv``."""
    labels = read_label_csv(labels_csv)
    files = list_images(folder)
    if not files:
        raise FileNotFoundError(f"{folder}: no image files (expected <id>.png or <id>.jpg)")
    missing = [p.name for p in files if p.stem not in labels]
    if missing:
        raise CIFARFormatError(f"{labels_csv} has no row for {len(missing)} images of {folder}, e.g. {missing[:3]}")
    return files, [labels[p.stem] for p in files]


class CIFAR10(FoldedData):
    """CIFAR-10 as batches of ``(B, 3, image_size, image_size)`` floats and ``(B,)`` labels.

    Args:
        data_dir: a folder holding ``cifar-10-batches-py`` (or its files), or the Kaggle layout.
        batch_size: examples per batch.
        image_size: side length fed to the model (32, or larger for nets that need it).
        augment: training pipeline of ``datamodules.augment`` (``cifar``: pad-crop-flip;
            ``flip``: the course's lecture 36; ``kaggle_cifar``: lecture 39; ``none``).
        eval_augment: pipeline for validation and test (``none``: resize and normalise).
        normalize: standardise with CIFAR-10's channel means and stds.
        val_size: validation images split from the training set (count or fraction), by a
            generator seeded with ``seed``; 0 validates on the test set.
        seed: seed of the validation split and of the augmentation stream.
        fold, folds_file: validate on fold ``fold`` of ``folds_file`` (``id,fold``; the ids are the
            training images' positions, as ``zoo.fit --folds`` saves them) instead of ``val_size``.
        download: fetch the pickles from Toronto when no layout is on disk.
        cache: decode Kaggle-layout images once, up front, instead of every epoch.
        num_workers: DataLoader worker processes.
    """

    num_classes = len(CLASSES)
    in_channels = 3
    classes = CLASSES

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        image_size: int = 32,
        augment: str = "cifar",
        eval_augment: str = "none",
        normalize: bool = True,
        val_size: int | float = 5000,
        seed: int = 0,
        download: bool = True,
        cache: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        fold: int | None = None,
        folds_file: str | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, pin_memory, fold=fold, folds_file=folds_file)
        for name in (augment, eval_augment):  # fail at parse time, not after loading the data
            if name not in augmentations.PIPELINES:
                raise ConfigError(f"unknown augmentation {name!r}; choose one of {sorted(augmentations.PIPELINES)}")
        self.data_dir = Path(data_dir).expanduser()
        self.image_size = image_size
        self.train_augment, self.eval_augment = augment, eval_augment
        self.mean, self.std = (MEAN, STD) if normalize else (None, None)
        self.val_size = val_size
        self.seed = seed
        self.download = download
        self.cache = cache

    @property
    def preprocessing(self) -> dict:
        """Recorded in checkpoints by the classification task, for ``zoo predict`` on image files."""
        return augmentations.eval_preprocessing(self.eval_augment, self.image_size, self.mean, self.std)

    def fold_rows(self) -> tuple[list[str], list[int]]:
        """The ids (positions) and labels of the training images, for ``zoo.fit --folds``."""
        self.prepare_data()
        (_, labels), _ = self._load(self._find(fetch=False), decode=False)
        return [str(i) for i in range(len(labels))], list(labels)

    def _find(self, fetch: bool) -> Found:
        d = self.data_dir
        pickles = {name: (name,) for name in (*TRAIN_BATCHES, TEST_BATCH)}
        kaggle = {"labels": ("trainLabels.csv",), "train": ("train/",)}
        return find_data(
            "CIFAR-10",
            [(d / BATCHES_DIR, pickles), (d, pickles), (d, kaggle)],
            fetch=self._download if fetch else None,
            source=URL,
            no_fetch="download=False" if not self.download else "not downloaded yet: prepare_data() fetches them",
            how=f"Download {URL} (or the Kaggle competition's train/ and trainLabels.csv), unpack it there, "
            "or point --data.init_args.data_dir at a copy.",
        )

    def _download(self) -> None:
        archive = self.data_dir / URL.rsplit("/", 1)[-1]
        extract(download(URL, archive, md5=MD5), self.data_dir)

    def prepare_data(self) -> None:
        self._find(fetch=self.download)

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "_train", None) is not None:
            return
        train, test = self._load(self._find(fetch=False))  # prepare_data (rank 0 only) downloads
        images, labels = train
        seed = self.seed
        train_tf = augmentations.build(self.train_augment, self.image_size, self.mean, self.std, seed=seed)

        def subset(idx, tf) -> ImageFiles:
            return ImageFiles([images[i] for i in idx], [labels[i] for i in idx], tf)

        test_set = None if test is None else ImageFiles(*test, self._eval_tf())
        if self.folds_file is not None or self.val_size:
            tr, va = self.split([str(i) for i in range(len(images))], self.val_size, seed)
            self._train, self._val = subset(tr.tolist(), train_tf), subset(va.tolist(), self._eval_tf())
        elif test_set is None:
            raise ConfigError(f"{self.data_dir}: no labelled test set (testLabels.csv) and val_size=0")
        else:
            self._train, self._val = ImageFiles(images, labels, train_tf), test_set
        if test_set is None:
            rank_zero_warn(f"{self.data_dir}: no testLabels.csv, so the test set is the validation split")
        self._test = test_set or self._val

    def _eval_tf(self):
        return augmentations.build(self.eval_augment, self.image_size, self.mean, self.std, seed=self.seed)

    def _load(self, found: Found, decode: bool = True) -> tuple[tuple[list, list], tuple[list, list] | None]:
        """``((train images, labels), (test images, labels) or None)``; images are arrays
        or, for the Kaggle layout without ``cache`` (or ``decode``), file paths."""
        folder = found.folder
        if TEST_BATCH in found.paths:
            train = [read_batch(folder / name) for name in TRAIN_BATCHES]
            x, y = np.concatenate([b[0] for b in train]), np.concatenate([b[1] for b in train])
            tx, ty = read_batch(folder / TEST_BATCH)
            return (list(x), y.tolist()), (list(tx), ty.tolist())
        train = read_kaggle_folder(folder / "train", folder / "trainLabels.csv")
        test = None
        if (folder / "testLabels.csv").is_file() and (folder / "test").is_dir():
            test = read_kaggle_folder(folder / "test", folder / "testLabels.csv")
        if self.cache and decode:
            train = ([read_rgb(p) for p in train[0]], train[1])
            test = test and ([read_rgb(p) for p in test[0]], test[1])
        return train, test
