"""What the data modules share: the facts linked into the task, loaders, in-memory tensors, and the
fold protocol (``FoldedData``)."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from zoo.core.errors import ConfigError
from zoo.core.problems import DataError

if TYPE_CHECKING:
    import pandas as pd


class ZooDataModule(L.LightningDataModule):
    """Base of every data module.

    ``num_classes``, ``in_channels`` and ``in_features`` are linked by ``zoo.fit`` into the task's
    arguments of the same names; a data module sets those that apply (others stay ``None``).
    """

    num_classes: int | None = None
    in_channels: int | None = None
    in_features: int | None = None

    def __init__(self, batch_size: int = 256, num_workers: int = 0, pin_memory: bool = False) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory

    # Subclasses build ``self._train``, ``self._val`` and ``self._test`` in ``setup``.
    def train_dataloader(self) -> DataLoader:
        return self.loader(self._train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader(self._val)

    def test_dataloader(self) -> DataLoader:
        return self.loader(self._test)

    def loader(self, dataset: Dataset, shuffle: bool = False, **kwargs: Any) -> DataLoader:
        """A DataLoader with this module's settings; batched datasets (``__getitems__``
        returning a whole batch) are passed through without per-sample collation."""
        batched = isinstance(dataset, TensorDataset)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            collate_fn=_keep if batched else None,
            **kwargs,
        )


def _keep(batch: Any) -> Any:
    return batch


class TensorDataset(Dataset):
    """Tensors held in memory, fetched a whole batch at a time by fancy indexing.

    ``__getitems__`` (which ``DataLoader`` calls with a batch of indices) indexes every tensor
    once instead of stacking ``batch_size`` single samples: for Fashion-MNIST this makes the
    data side nearly free. ``transform`` maps the whole batch ``(x, y)`` (e.g. to float, resize).
    """

    def __init__(self, *tensors: torch.Tensor, transform: Callable | None = None) -> None:
        if len({len(t) for t in tensors}) != 1:
            raise ConfigError(f"tensors differ in length: {[len(t) for t in tensors]}")
        self.tensors = tensors
        self.transform = transform

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, ...]:
        idx = torch.as_tensor(indices)
        batch = tuple(t[idx] for t in self.tensors)
        return self.transform(*batch) if self.transform else batch

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[0] for t in self.__getitems__([i]))


def split_sizes(n: int, val_size: int | float) -> tuple[int, int]:
    """``(train, val)`` sizes; ``val_size`` is a count or a fraction of ``n``."""
    if val_size < 0:
        raise ConfigError(f"val_size={val_size} is negative; give a count >= 0 or a fraction in [0, 1)")
    n_val = int(round(val_size * n)) if isinstance(val_size, float) and val_size < 1 else int(val_size)
    if not n_val < n:
        raise ConfigError(f"val_size={val_size} leaves no training examples out of {n}")
    return n - n_val, n_val


def seeded_split(n: int, val_size: int | float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and validation indices from a generator of its own, so the split does not depend
    on (or disturb) the global seed."""
    n_train, _ = split_sizes(n, val_size)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:n_train], perm[n_train:]


class FoldedData(ZooDataModule):
    """A data module whose validation rows can be one fold of saved folds: the fold protocol of
    ``zoo.fit --folds`` and the competitions, which find it by ``isinstance``.

    ``fold_rows`` gives the training rows' ids and labels; the driver (``zoo.run.folds``) deals
    them into folds, saves them as a CSV ``id,fold`` and passes each fold's run ``fold`` and
    ``folds_file``; ``split`` then holds that fold out for validation and trains on the others.
    A subclass names ``fold`` and ``folds_file`` in its own signature (they are options of the
    recipe) and passes them on by keyword; the others go on to the next base.
    """

    def __init__(self, *args: Any, fold: int | None = None, folds_file: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        both = "give both (the held-out fold and the saved folds, a CSV id,fold) or neither"
        if fold is not None and folds_file is None:
            raise ConfigError(f"fold={fold} without folds_file: {both}")
        if folds_file is not None and fold is None:
            raise ConfigError(f"folds_file={folds_file} without fold: {both}")
        self.fold, self.folds_file = fold, folds_file

    def fold_rows(self) -> tuple[list[str], list | None]:
        """The training rows' ids, as ``folds_file`` names them, and their labels to stratify the
        folds by (``None``: plain shuffled folds)."""
        raise NotImplementedError

    def split(self, ids: Sequence[str], val_size: int | float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Train and validation row indices: the rows whose id is in fold ``fold`` of
        ``folds_file`` validate and the others train; without folds, a seeded ``val_size`` split."""
        if self.folds_file is None:
            train, val = seeded_split(len(ids), val_size, seed)
            return train.numpy(), val.numpy()
        folds = read_csv(self.folds_file, dtype={"id": str}).set_index("id")["fold"]
        if self.fold not in set(folds):
            raise ConfigError(f"{self.folds_file}: no fold {self.fold}; it holds folds {sorted(set(folds))}")
        fold_of = np.array([folds.get(str(i), -1) for i in ids])
        if (fold_of < 0).any():
            raise ConfigError(f"{self.folds_file}: no fold for ids {[i for i, f in zip(ids, fold_of) if f < 0][:10]}")
        return np.flatnonzero(fold_of != self.fold), np.flatnonzero(fold_of == self.fold)


def read_text(path: str | Path) -> str:
    """A UTF-8 text file, without a byte-order mark (Windows editors write one) and with Windows
    line ends read as ``\n``; one in another encoding is an error that names the file and the byte."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        byte = f"byte 0x{e.object[e.start]:02x} at offset {e.start}"
        raise DataError(str(path), [f"not UTF-8 text ({byte}); save it as UTF-8"]) from None


def read_csv(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """A CSV with a header and at least one row (``kwargs`` go to ``pandas.read_csv``); a file
    that is not UTF-8 text, is empty, holds only a header or does not parse is an error naming it."""
    import pandas as pd  # here: most data modules never read a CSV

    text = read_text(path)
    if not text.strip():
        raise DataError(str(path), ["empty file; expected a CSV with a header row"])
    try:
        frame = pd.read_csv(io.StringIO(text), **kwargs)
    except pd.errors.ParserError as e:
        raise DataError(str(path), [f"not a readable CSV ({' '.join(str(e).split())})"]) from None
    if frame.empty:
        raise DataError(str(path), [f"no rows: only the header ({', '.join(map(str, frame.columns[:5]))}, ...)"])
    return frame
