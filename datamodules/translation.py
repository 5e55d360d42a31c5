"""Machine-translation data: Tatoeba's English-French sentence pairs (the course's lectures 60-62,
book section 9.5), as the manythings.org/anki ``fra.txt`` lays them out: one pair a line,
``English<TAB>French`` (newer releases add a third, attribution column, which is ignored).

The course's preprocessing: U+202F and U+00A0 become spaces, everything is lower-cased and a
space goes before ``,.!?``; tokens are the words between spaces. Source and target have their
own vocabularies (``<unk>`` 0, ``<pad>`` 1, ``<bos>`` 2, ``<eos>`` 3, then words seen at least
``min_freq`` times in the training pairs).

Training pairs are the first ``num_examples`` lines (the course's 600: ``go .``, ``hi .``, ...)
or, with ``select="random"``, a seeded sample. Unlike the course, which trains and evaluates on
the same pairs, the validation and test pairs are drawn (seeded) from the other lines, leaving out
every pair whose English sentence is also a training source, so BLEU is measured on sentences the
model never saw. A line without a tab or with an empty side is an error naming its line number.

Training rows are ``sentence + <eos>`` cut or padded to ``num_steps`` (the course's
``truncate_pad``); validation and test rows are padded to the split's longest sentence, never cut,
and their batches also carry the untokenised references, for BLEU. A batch is
``(src, src_len, tgt, tgt_len)``, plus ``references`` (a list of strings) in validation and test,
cut to its longest source and target (every model masks the padding, so only the time changes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from datamodules.base import TensorDataset, ZooDataModule, read_text
from datamodules.download import find_data
from datamodules.text import Vocab, encode, preprocess_nmt, tokenize_nmt
from zoo.core.errors import ConfigError
from zoo.core.problems import DataError

log = logging.getLogger(__name__)
SHARED = Path("../shared/data")  # the project's offline copies, relative to the repository root
RESERVED = ("<pad>", "<bos>", "<eos>")
Pair = tuple[str, str]


def parse_pairs(text: str, source: str = "fra.txt") -> list[Pair]:
    """Preprocessed ``(english, french)`` pairs of a ``fra.txt``'s text; every bad line (no tab,
    an empty side) is named by its line number in one ``DataError``, as is a file with no pair."""
    pairs, bad = [], []
    for number, line in enumerate(preprocess_nmt(text).split("\n"), 1):  # one pass over the whole text
        if not line.strip():
            continue  # a blank line (the file's last) is not a pair
        parts = line.rstrip("\r").split("\t")
        src, tgt = (parts[0].strip(), parts[1].strip()) if len(parts) >= 2 else ("", "")
        if not (src and tgt):
            bad.append(number)
        else:
            pairs.append((src, tgt))
    if bad:
        shown = ", ".join(map(str, bad[:20])) + (f" and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise DataError(source, [f"{len(bad)} line(s) are not 'english<TAB>french' with both sides non-empty: "
                                 f"line {shown}"])  # fmt: skip
    if not pairs:
        raise DataError(source, ["no sentence pairs (empty file); expected 'english<TAB>french' lines"])
    return pairs


class PairDataset(TensorDataset):
    """Encoded pairs, fetched a batch at a time; with ``references`` each batch also carries the
    target sentences as text."""

    def __init__(self, src: tuple[torch.Tensor, torch.Tensor], tgt: tuple[torch.Tensor, torch.Tensor],
                 references: list[str] | None = None) -> None:  # fmt: skip
        super().__init__(*src, *tgt)
        self.references = references

    def __getitems__(self, indices: Sequence[int]) -> tuple:
        src, src_len, tgt, tgt_len = super().__getitems__(indices)
        # cut to the batch's longest rows: the padding past them is masked everywhere anyway
        batch = (src[:, : int(src_len.max())], src_len, tgt[:, : int(tgt_len.max())], tgt_len)
        if self.references is None:
            return batch
        return (*batch, [self.references[int(i)] for i in indices])


class FraEng(ZooDataModule):
    """English -> French pairs from ``fra.txt``.

    Args:
        data_dir: folder holding ``fra.txt`` (also tried: ``<data_dir>/fra-eng``,
            ``<data_dir>/fra_eng/fra-eng`` and the project's ``../shared/data/fra_eng/fra-eng``).
        batch_size: pairs per batch (course: 64).
        num_steps: tokens per training row, ``<eos>`` included (course: 10).
        num_examples: training pairs (course: 600); ``None``: every pair not held out.
        select: ``first`` (the file's first lines, as the course) or ``random`` (a seeded sample).
        min_freq: words seen fewer times in the training pairs become ``<unk>`` (course: 2).
        val_size, test_size: held-out pairs for ``val`` and ``test``.
        seed: seed of the sample and of the held-out draw.
    """

    FILE = "fra.txt"
    HOW_TO_GET = ("The course's http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip (SHA-1 "
                  "94646ad1522d915e7b0f9296181140edcf86a4f5) holds it as fra-eng/fra.txt; put it in "
                  "--data.init_args.data_dir.")  # fmt: skip

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        num_steps: int = 10,
        num_examples: int | None = 600,
        select: Literal["first", "random"] = "first",
        min_freq: int = 2,
        val_size: int = 200,
        test_size: int = 200,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.save_hyperparameters()
        if select not in ("first", "random"):
            raise ConfigError(f"select must be 'first' or 'random', got {select!r}")
        if num_steps < 2:
            raise ConfigError(f"num_steps must be at least 2 (a word and <eos>), got {num_steps}")
        self.data_dir = Path(data_dir).expanduser()
        self.num_steps, self.num_examples, self.select = num_steps, num_examples, select
        self.min_freq, self.val_size, self.test_size, self.seed = min_freq, val_size, test_size, seed
        self._splits: dict[str, list[Pair]] | None = None
        self._vocabs: tuple[Vocab, Vocab] | None = None

    def path(self) -> Path:
        """``fra.txt`` by the data modules' one policy (``find_data``): the ``data_dir``'s layouts,
        then the project's shared copy. No download: the course's zip has a published SHA-1 only,
        and the zoo verifies downloads by SHA-256 or MD5."""
        d, files = self.data_dir, {"pairs": [self.FILE]}
        found = find_data("FraEng", [(folder, files) for folder in (d, d / "fra-eng", d / "fra_eng" / "fra-eng")],
                          system=[(SHARED / "fra_eng" / "fra-eng", files)], how=self.HOW_TO_GET)  # fmt: skip
        return found.paths["pairs"]

    def splits(self) -> dict[str, list[Pair]]:
        """``train``, ``val`` and ``test`` pairs (read once)."""
        if self._splits is None:
            path = self.path()
            pairs = parse_pairs(read_text(path), str(path))
            self._splits = split_pairs(pairs, self.num_examples, self.select, self.val_size, self.test_size,
                                       self.seed, str(path))  # fmt: skip
            log.info("FraEng: %s from %s", ", ".join(f"{len(v)} {k}" for k, v in self._splits.items()), path)
        return self._splits

    @property
    def src_vocab(self) -> Vocab:
        return self._build_vocabs()[0]

    @property
    def tgt_vocab(self) -> Vocab:
        return self._build_vocabs()[1]

    @property
    def vocab_size(self) -> tuple[int, int]:
        """Source and target vocabulary sizes (linked by ``zoo.fit`` into the task)."""
        return len(self.src_vocab), len(self.tgt_vocab)

    def _build_vocabs(self) -> tuple[Vocab, Vocab]:
        if self._vocabs is None:
            train = self.splits()["train"]
            self._vocabs = tuple(
                Vocab((tokenize_nmt(p[side]) for p in train), min_freq=self.min_freq, reserved_tokens=RESERVED)
                for side in (0, 1)
            )  # fmt: skip
        return self._vocabs

    def prepare_data(self) -> None:
        self.path()  # raises naming every place looked

    def dataset(self, split: str) -> PairDataset:
        pairs = self.splits()[split]
        src = [tokenize_nmt(s) for s, _ in pairs]
        tgt = [tokenize_nmt(t) for _, t in pairs]
        steps = self.num_steps if split == "train" else None
        refs = None if split == "train" else [t for _, t in pairs]
        return PairDataset(encode(src, self.src_vocab, steps), encode(tgt, self.tgt_vocab, steps), refs)

    def setup(self, stage: str | None = None) -> None:
        self._train, self._val, self._test = (self.dataset(s) for s in ("train", "val", "test"))


def split_pairs(
    pairs: list[Pair], num_examples: int | None, select: str, val_size: int, test_size: int, seed: int,
    source: str = "fra.txt",
) -> dict[str, list[Pair]]:
    """Training pairs (the first ``num_examples`` or a seeded sample), then held-out pairs drawn
    from the others whose source sentence is not a training source."""
    n = len(pairs)
    gen = torch.Generator().manual_seed(seed)
    order = torch.arange(n) if select == "first" else torch.randperm(n, generator=gen)
    n_train = n - val_size - test_size if num_examples is None else num_examples
    if not 0 < n_train <= n:
        raise DataError(source, [f"{n} pairs: none left for training with num_examples={num_examples}, "
                                 f"val_size={val_size} and test_size={test_size}"])  # fmt: skip
    train = [pairs[i] for i in order[:n_train].tolist()]
    seen = {s for s, _ in train}
    rest = [i for i in order[n_train:].tolist() if pairs[i][0] not in seen]
    if len(rest) < val_size + test_size:
        raise DataError(source, [f"only {len(rest)} pairs are left outside the {n_train} training pairs (and "
                                 f"their source sentences) for val_size={val_size} + test_size={test_size}; "
                                 "lower num_examples or the held-out sizes"])  # fmt: skip
    held = [rest[i] for i in torch.randperm(len(rest), generator=gen)[: val_size + test_size].tolist()]
    return {
        "train": train,
        "val": [pairs[i] for i in held[:val_size]],
        "test": [pairs[i] for i in held[val_size:]],
    }
