"""Language-model data: The Time Machine, Penn Treebank and WikiText-2 cut into minibatches.

The course's lectures 52-53 (book sections 8.2-8.3): a corpus is one long sequence of token
indices, and a minibatch is ``batch_size`` windows of ``num_steps`` tokens ``X`` with the same
windows shifted by one token as targets ``Y``. Two ways to cut the windows, each starting from
a random offset per epoch:

* **random sampling**: windows in random order; neighbouring batches are unrelated, so the
  model's hidden state is reset before every batch;
* **sequential partitioning**: row ``r`` of batch ``i + 1`` continues row ``r`` of batch ``i``,
  so the hidden state is carried (detached) from batch to batch.

Every batch is ``(X, Y, reset)``: ``reset`` is True where the hidden state must start afresh
(every batch of random sampling, the first of each sequential pass). The task needs nothing
else to know which scheme it gets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import DataLoader, IterableDataset

from datamodules.base import ZooDataModule, read_text
from datamodules.download import Files, Found, download, extract, find_data
from datamodules.text import Level, Tokenizer, Vocab
from zoo.core.errors import ConfigError
from zoo.core.problems import DataError

log = logging.getLogger(__name__)
Sampling = Literal["random", "sequential"]
D2L_DATA = "http://d2l-data.s3-accelerate.amazonaws.com/"
SHARED = Path("../shared/data")  # the project's offline copies, relative to the repository root


class LMBatches(IterableDataset):
    """An epoch of ``(X, Y, reset)`` batches, ``X`` and ``Y`` of shape ``(batch_size, num_steps)``.

    With ``shuffle`` each pass draws a new offset (and, for random sampling, a new order) from a
    generator of its own seeded with ``seed``; without it (validation, test) the offset is 0.
    The number of batches is that of the worst offset, so ``len`` is the same every epoch.
    """

    def __init__(
        self, corpus: torch.Tensor, batch_size: int, num_steps: int, sampling: Sampling,
        shuffle: bool, seed: int = 0, source: str = "the corpus",
    ) -> None:  # fmt: skip
        if sampling not in ("random", "sequential"):
            raise ConfigError(f"sampling must be 'random' or 'sequential', got {sampling!r}")
        if batch_size < 1 or num_steps < 1:
            raise ConfigError(f"batch_size ({batch_size}) and num_steps ({num_steps}) must be positive")
        self.corpus, self.batch_size, self.num_steps = corpus, batch_size, num_steps
        self.sampling, self.shuffle = sampling, shuffle
        self.generator = torch.Generator().manual_seed(seed)
        n = len(corpus)
        if sampling == "random":  # offsets 0..num_steps-1, as the course's seq_data_iter_random
            self.num_windows = (n - num_steps) // num_steps
            self.num_batches = self.num_windows // batch_size
        else:  # offsets 0..num_steps, as the course's seq_data_iter_sequential
            self.row_len = (n - num_steps - 1) // batch_size
            self.num_batches = self.row_len // num_steps
        if self.num_batches < 1:
            raise DataError(source, [f"{n} tokens{' (an empty text)' if n == 0 else ''}, too short for one batch "
                                     f"of {batch_size} x {num_steps} tokens ({sampling} sampling); lower batch_size "
                                     "or num_steps, or give a longer text"])  # fmt: skip

    def __len__(self) -> int:
        return self.num_batches

    def _offset(self, high: int) -> int:
        return int(torch.randint(high, (), generator=self.generator)) if self.shuffle else 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
        T, B = self.num_steps, self.batch_size
        if self.sampling == "random":
            offset = self._offset(T)
            starts = offset + T * torch.arange(self.num_windows)
            if self.shuffle:
                starts = starts[torch.randperm(self.num_windows, generator=self.generator)]
            steps = torch.arange(T)
            for i in range(self.num_batches):
                idx = starts[i * B : (i + 1) * B, None] + steps  # (B, T) corpus positions
                yield self.corpus[idx], self.corpus[idx + 1], True
        else:
            offset = self._offset(T + 1)
            span = B * self.row_len
            xs = self.corpus[offset : offset + span].reshape(B, self.row_len)
            ys = self.corpus[offset + 1 : offset + 1 + span].reshape(B, self.row_len)
            for i in range(self.num_batches):
                yield xs[:, i * T : (i + 1) * T], ys[:, i * T : (i + 1) * T], i == 0


class LanguageModelData(ZooDataModule):
    """Base of the language-model data modules: tokens per split -> vocabulary -> batches.

    Subclasses say how to find the files and cut them into ``train``/``val``/``test`` token
    lists (``_split_tokens``). The vocabulary is built from the training tokens on first use;
    ``vocab_size`` (linked into the task by ``zoo.fit``) needs it when the CLI builds the model,
    before ``setup``, which is why reading (and, if need be, downloading) happens lazily there.

    Args:
        data_dir: folder holding the corpus files (the project's ``../shared/data`` copy is
            tried after it).
        level: ``char`` or ``word`` tokens.
        batch_size: rows per batch (course: 32).
        num_steps: tokens per row (course: 35).
        sampling: ``sequential`` (carry the hidden state) or ``random`` (reset it).
        min_freq: tokens rarer than this in the training split become ``<unk>``.
        max_tokens: keep only the first ``max_tokens`` training tokens (``None``: all).
        seed: seed of the per-epoch offsets and orders.
        download: fetch the corpus when it is nowhere on disk.
    """

    def __init__(
        self,
        data_dir: str = "data",
        level: Level = "char",
        batch_size: int = 32,
        num_steps: int = 35,
        sampling: Sampling = "sequential",
        min_freq: int = 0,
        max_tokens: int | None = None,
        seed: int = 0,
        download: bool = True,
    ) -> None:
        super().__init__(batch_size)
        self.save_hyperparameters()
        self.data_dir = Path(data_dir).expanduser()
        self.level, self.num_steps, self.sampling = level, num_steps, sampling
        self.min_freq, self.max_tokens, self.seed, self.download = min_freq, max_tokens, seed, download
        self._tokens: dict[str, list[str]] | None = None
        self.sources: dict[str, str] = {}  # split -> the file its tokens come from (for messages)
        self._vocab: Vocab | None = None

    # -- what a subclass provides -------------------------------------------------------------
    @property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.level)

    def _split_tokens(self) -> dict[str, list[str]]:
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------
    def _find(self, places: list[Path], files: Files, shared: Path, fetch=None, source: str = "",
              how: str = "") -> Found:  # fmt: skip
        """The corpus by ``find_data``'s policy: ``places`` (the data_dir's layouts), then the
        project's shared copy, then ``fetch`` (when ``download``)."""
        return find_data(
            type(self).__name__, [(folder, files) for folder in places], system=[(shared, files)],
            fetch=fetch if self.download else None, source=source,
            no_fetch="download=False" if fetch else "no download source is known",
            how=how or "Put the files there or pass --data.init_args.data_dir.",
        )  # fmt: skip

    def tokens(self) -> dict[str, list[str]]:
        if self._tokens is None:
            splits = self._split_tokens()
            if self.max_tokens is not None:
                splits["train"] = splits["train"][: self.max_tokens]
            self._tokens = splits
        return self._tokens

    @property
    def vocab(self) -> Vocab:
        if self._vocab is None:
            self._vocab = Vocab(self.tokens()["train"], min_freq=self.min_freq)
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def corpus(self, split: str) -> torch.Tensor:
        """A split as one long tensor of token indices."""
        return torch.tensor(self.vocab[self.tokens()[split]], dtype=torch.long)

    def prepare_data(self) -> None:
        self.tokens()  # finds or downloads the files; raises naming them if that fails

    def setup(self, stage: str | None = None) -> None:
        self._sets = {
            split: LMBatches(
                self.corpus(split),
                self.batch_size,
                self.num_steps,
                self.sampling,
                shuffle=split == "train",
                seed=self.seed,
                source=f"{self.sources.get(split, type(self).__name__)} ({split} split)",
            )  # fmt: skip
            for split in ("train", "val", "test")
        }
        self._restore_train_generator()

    # The training batches' generator travels in checkpoints (Lightning saves a data module's
    # state_dict), so a resumed run draws the offsets and orders the uninterrupted one would.
    def state_dict(self) -> dict[str, Any]:
        sets = getattr(self, "_sets", None)
        return {"train_generator": sets["train"].generator.get_state()} if sets else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_generator = state_dict.get("train_generator")
        self._restore_train_generator()  # now if set up already, else in setup

    def _restore_train_generator(self) -> None:
        pending, sets = getattr(self, "_pending_generator", None), getattr(self, "_sets", None)
        if pending is not None and sets:
            sets["train"].generator.set_state(pending)
            self._pending_generator = None

    def _loader(self, split: str) -> DataLoader:
        # the dataset yields whole batches (slices of one in-memory tensor): no collation, and
        # worker processes would only add overhead (and split the stream that sequential needs)
        return DataLoader(self._sets[split], batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


def _tail_splits(tokens: list[str], val_fraction: float, test_fraction: float, what: str) -> dict:
    """train / val / test as consecutive pieces of one token list (val and test at the end)."""
    if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
        raise ConfigError(f"{what}: val_fraction and test_fraction must be > 0 with a sum < 1, "
                         f"got {val_fraction} and {test_fraction}")  # fmt: skip
    n = len(tokens)
    n_val, n_test = int(n * val_fraction), int(n * test_fraction)
    n_train = n - n_val - n_test
    return {
        "train": tokens[:n_train],
        "val": tokens[n_train : n_train + n_val],
        "test": tokens[n_train + n_val :],
    }


class TimeMachine(LanguageModelData):
    """H. G. Wells' *The Time Machine* (the course's corpus, lectures 52-59), read from
    ``timemachine.txt`` with the course's normalisation (letters only, lower case): 28 tokens
    at character level (26 letters, space, ``<unk>``).

    The course trains on the whole book and reports training perplexity; here the last
    ``val_fraction`` and ``test_fraction`` of the tokens are held out for ``val/ppl`` and
    ``test/ppl`` (the training split is the first part, and ``train/ppl`` is on it).
    """

    URL = D2L_DATA + "timemachine.txt"
    SHA256 = "8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516"
    FILE = "timemachine.txt"

    def __init__(self, val_fraction: float = 0.05, test_fraction: float = 0.05, **kwargs) -> None:
        super().__init__(**kwargs)
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    @property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.level, letters_only=True)

    def path(self) -> Path:
        d, target = self.data_dir, self.data_dir / "time_machine"
        found = self._find(
            [d, target], {"book": (self.FILE,)}, SHARED / "time_machine",
            lambda: download(self.URL, target / self.FILE, sha256=self.SHA256), self.URL,
        )  # fmt: skip
        return found.paths["book"]

    def _split_tokens(self) -> dict[str, list[str]]:
        path = self.path()
        tokens = self.tokenizer(read_text(path))
        self.sources = dict.fromkeys(("train", "val", "test"), str(path))
        return _tail_splits(tokens, self.val_fraction, self.test_fraction, str(path))


class PennTreebank(LanguageModelData):
    """Mikolov's Penn Treebank (``ptb.{train,valid,test}.txt``, one sentence a line, 10k words,
    rare words already ``<unk>``). At word level every line ends with ``<eos>``; at character
    level the raw text is used, newlines included."""

    URL = D2L_DATA + "ptb.zip"
    SHA256 = "310d8f602882a5716613815ed75596e5764ea84ed04c5630eebaaf2b943ec5aa"
    FILES = {"train": "ptb.train.txt", "val": "ptb.valid.txt", "test": "ptb.test.txt"}

    def __init__(self, level: Level = "word", **kwargs) -> None:
        super().__init__(level=level, **kwargs)

    @property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.level, eos="<eos>" if self.level == "word" else None)

    def _fetch(self) -> None:
        target = self.data_dir / "ptb"
        extract(download(self.URL, target / "ptb.zip", sha256=self.SHA256), target)

    def _split_tokens(self) -> dict[str, list[str]]:
        d = self.data_dir
        files = {s: (f,) for s, f in self.FILES.items()}
        found = self._find([d, d / "ptb", d / "ptb" / "ptb"], files, SHARED / "ptb" / "ptb", self._fetch, self.URL)
        self.sources = {s: str(path) for s, path in found.paths.items()}
        return {s: self.tokenizer(read_text(path)) for s, path in found.paths.items()}


class WikiText2(LanguageModelData):
    """WikiText-2 (Merity et al., 2016), tokenised, read as ``{train,valid,test}.txt``
    (pytorch/examples' names) or ``wiki.{train,valid,test}.tokens`` (the original zip's).

    The project's copy lacks the training file; ``train_on="valid"`` trains on the validation
    file instead and then validates and tests on the test file (say so when you report a number).
    No download: the original zip's address no longer serves it.
    """

    NAMES = {"train": ("train.txt", "wiki.train.tokens"), "valid": ("valid.txt", "wiki.valid.tokens"),
             "test": ("test.txt", "wiki.test.tokens")}  # fmt: skip

    def __init__(self, level: Level = "word", train_on: Literal["train", "valid"] = "train",
                 **kwargs) -> None:  # fmt: skip
        super().__init__(level=level, **kwargs)
        self.train_on = train_on

    @property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.level, eos="<eos>" if self.level == "word" else None)

    def _split_tokens(self) -> dict[str, list[str]]:
        d = self.data_dir
        files = {
            "train": self.train_on,
            "val": "valid" if self.train_on == "train" else "test",
            "test": "test",
        }
        names = {f: self.NAMES[f] for f in dict.fromkeys(files.values())}
        hint = " (this copy may lack the training split: try --data.init_args.train_on valid)"
        found = self._find([d, d / "wikitext-2", d / "wikitext2"], names, SHARED / "wikitext2",
                           how="Put the files there or pass --data.init_args.data_dir"
                           + (hint if self.train_on == "train" else "") + ".")  # fmt: skip
        if self.train_on == "valid":
            log.warning("WikiText2: training on valid.txt, validating and testing on test.txt")
        text = {f: read_text(path) for f, path in found.paths.items()}
        self.sources = {s: str(found.paths[f]) for s, f in files.items()}
        return {s: self.tokenizer(text[f]) for s, f in files.items()}
