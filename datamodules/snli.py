"""The Stanford Natural Language Inference corpus (Bowman et al., 2015; the course's book sections
16.4-16.7): premise and hypothesis sentences labelled ``entailment`` (0), ``contradiction`` (1)
or ``neutral`` (2), the course's label order.

Read from SNLI 1.0's ``snli_1.0_{train,dev,test}.txt`` (tab-separated with a header row, the
layout the course reads) or ``snli_1.0_{train,dev,test}.jsonl`` (one JSON object a line). The
sentences are the binary parses with the brackets removed (the course's ``extract_text``: words
and punctuation apart), falling back to ``sentence1``/``sentence2`` split at spaces when a row
has no parse. Rows whose gold label is ``-`` (the annotators did not agree) are dropped and
counted, as the course drops them; a row that cannot be read, or has another label, is an error
naming the file and line. Unlike the course, every sentence is lower-cased for both models (the
course keeps the case for decomposable attention, so capitalised words miss GloVe's lower-case
vectors, and lower-cases for BERT).

Batches come in two formats:

* ``pair`` (decomposable attention): ``(premises (B, max_len), hypotheses (B, max_len), labels (B,))``,
  each sentence cut or padded with ``<pad>`` to ``max_len`` (the course's ``truncate_pad``, 50),
  then each side cut to the batch's longest sentence (the zoo's model masks ``<pad>``, so only
  the time changes); the vocabulary is the training pairs' (``<unk>``, ``<pad>``, words seen
  ``min_freq`` times).
* ``bert``: ``(tokens (B, T), segments (B, T), valid_lens (B,), labels (B,))`` for
  ``<cls> premise <sep> hypothesis <sep>``, the longer sentence trimmed from its end until the
  pair fits ``max_len`` (the course's ``_truncate_pair_of_tokens``, 128); rows are cut to the
  batch's longest pair. Fine-tuning needs the pretraining checkpoint's vocabulary: ``vocab_from``
  (without it, the training pairs' words and BERT's ``<pad> <mask> <cls> <sep>``: a BERT from
  random weights).

The project's copy (``../shared/data/snli_subset``) holds the first 1,289 dev and 1,277 test rows
only, in jsonl; train on the dev part there (``train_split: dev``).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from datamodules.base import TensorDataset, ZooDataModule, read_text, seeded_split
from datamodules.download import download, extract, find_data
from datamodules.text import Vocab, read_bert_vocab
from zoo.core.errors import ConfigError
from zoo.core.problems import DataError, Problems

log = logging.getLogger(__name__)
SHARED = Path("../shared/data")  # the project's offline copies, relative to the repository root
LABELS = ("entailment", "contradiction", "neutral")
Format = Literal["pair", "bert"]
Example = tuple[list[str], list[str], int]


def extract_text(parse: str) -> str:
    """The course's ``extract_text``: a binary parse without its brackets, one space between tokens."""
    return re.sub(r"\s{2,}", " ", parse.replace("(", "").replace(")", "")).strip()


def tokenize_sentence(text: str) -> list[str]:
    """A sentence a user types, as the parses' tokens: lower case, punctuation apart."""
    return re.findall(r"[\w'-]+|[^\w\s]", text.lower())


def _row_text(row: dict, which: int) -> str | None:
    parse = row.get(f"sentence{which}_binary_parse")
    if isinstance(parse, str) and parse.strip():
        return extract_text(parse)
    text = row.get(f"sentence{which}")
    return text.strip() if isinstance(text, str) and text.strip() else None


def read_snli(path: str | Path) -> tuple[list[Example], int]:
    """The labelled examples of one ``.txt`` or ``.jsonl`` file, and how many ``-`` rows were
    dropped. Every unreadable row is named (file and line) in one ``DataError``."""
    path = Path(path)
    lines = read_text(path).split("\n")
    if not any(line.strip() for line in lines):
        raise DataError(str(path), ["empty file; expected SNLI 1.0's .txt (tab-separated, with a header) or .jsonl"])
    problems, bad = Problems(), {"not a JSON object": [], "no sentence1 or sentence2": [], "another label": []}
    rows: list[tuple[int, dict]] = []
    if path.suffix == ".jsonl":
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict):
                rows.append((number, row))
            else:
                bad["not a JSON object"].append(number)
    else:
        header = lines[0].rstrip("\r").split("\t")
        missing = [c for c in ("gold_label", "sentence1_binary_parse", "sentence2_binary_parse") if c not in header]
        if missing:
            raise DataError(str(path), [f"line 1: the header lacks {', '.join(missing)}; expected SNLI 1.0's "
                                        "tab-separated columns (gold_label, sentence1_binary_parse, ...)"])  # fmt: skip
        for number, line in enumerate(lines[1:], 2):
            if not line.strip():
                continue
            fields = line.rstrip("\r").split("\t")
            if len(fields) < len(header) - 5:  # the five annotator labels may be empty or absent
                bad.setdefault(f"fewer than {len(header) - 5} tab-separated fields", []).append(number)
                continue
            rows.append((number, dict(zip(header, fields, strict=False))))
    examples, dropped = [], 0
    for number, row in rows:
        label = row.get("gold_label")
        premise, hypothesis = _row_text(row, 1), _row_text(row, 2)
        if label == "-":
            dropped += 1
        elif label not in LABELS:
            bad["another label"].append(f"{number} ({label!r})")
        elif premise is None or hypothesis is None:
            bad["no sentence1 or sentence2"].append(number)
        else:
            examples.append((premise.lower().split(), hypothesis.lower().split(), LABELS.index(label)))
    for what, numbers in bad.items():
        expected = f"; expected one of {', '.join(LABELS)} or -" if what == "another label" else ""
        problems.add_each(f"{what}{expected}; lines", numbers)
    problems.raise_if_any(str(path))
    if not examples:
        raise DataError(str(path), [f"no labelled examples: {len(rows)} rows, {dropped} of them dropped for the "
                                    "gold label '-' (no annotator majority)"])  # fmt: skip
    return examples, dropped


def truncate_pad(ids: list[int], length: int, pad: int) -> list[int]:
    return ids[:length] + [pad] * (length - len(ids))


def truncate_pair(premise: list[str], hypothesis: list[str], max_len: int) -> tuple[list[str], list[str]]:
    """The course's ``_truncate_pair_of_tokens``: drop the longer sentence's last token until the
    pair fits ``max_len`` with ``<cls>`` and two ``<sep>``."""
    premise, hypothesis = list(premise), list(hypothesis)
    while len(premise) + len(hypothesis) > max_len - 3:
        (premise if len(premise) > len(hypothesis) else hypothesis).pop()
    return premise, hypothesis


def encode_bert(pairs: Sequence[tuple[list[str], list[str]]], vocab: Vocab, max_len: int) -> tuple[torch.Tensor, ...]:
    """``<cls> p <sep> h <sep>`` rows ``(N, max_len)``, their segments and valid lengths."""
    tokens = torch.full((len(pairs), max_len), vocab["<pad>"], dtype=torch.long)
    segments = torch.zeros((len(pairs), max_len), dtype=torch.long)
    valid_lens = torch.empty(len(pairs), dtype=torch.long)
    for i, (p, h) in enumerate(pairs):
        p, h = truncate_pair(p, h, max_len)
        row = ["<cls>", *p, "<sep>", *h, "<sep>"]
        tokens[i, : len(row)] = torch.tensor(vocab[row])
        segments[i, len(p) + 2 : len(row)] = 1
        valid_lens[i] = len(row)
    return tokens, segments, valid_lens


def encode_pair(pairs: Sequence[tuple[list[str], list[str]]], vocab: Vocab, max_len: int) -> tuple[torch.Tensor, ...]:
    """Premise and hypothesis rows ``(N, max_len)``, each cut or padded with ``<pad>``."""
    pad = vocab["<pad>"]
    return tuple(torch.tensor([truncate_pad(vocab[pair[side]], max_len, pad) for pair in pairs], dtype=torch.long)
                 for side in (0, 1))  # fmt: skip


class BERTPairDataset(TensorDataset):
    """``(tokens, segments, valid_lens, labels)`` batches cut to their longest pair."""

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, ...]:
        tokens, segments, valid_lens, labels = super().__getitems__(indices)
        width = int(valid_lens.max())
        return tokens[:, :width], segments[:, :width], valid_lens, labels


class SentencePairDataset(TensorDataset):
    """``(premises, hypotheses, labels)`` batches, each side cut to its longest sentence."""

    def __init__(self, premises: torch.Tensor, hypotheses: torch.Tensor, labels: torch.Tensor, pad: int) -> None:
        super().__init__(premises, hypotheses, labels)
        self.pad = pad

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, ...]:
        premises, hypotheses, labels = super().__getitems__(indices)
        return (*(x[:, : max(1, int((x != self.pad).sum(1).max()))] for x in (premises, hypotheses)), labels)


class SNLI(ZooDataModule):
    """SNLI premise/hypothesis pairs with three labels (see the module's docstring).

    Args:
        data_dir: folder holding ``snli_1.0_<split>.txt`` or ``.jsonl`` (also tried:
            ``<data_dir>/snli_1.0``, then the project's ``../shared/data/snli_subset/snli_1.0``).
        format: ``pair`` (decomposable attention) or ``bert`` (fine-tuning BERT).
        train_split, val_split, test_split: the file each stage reads (``train``, ``dev``, ``test``).
        val_fraction: above 0, validation is the examples of this fraction of the training file's
            premises (seeded; every pair of a held-out premise), and ``val_split`` is not read.
        max_len: tokens per sentence (``pair``; course 50) or per pair (``bert``; course 128).
        min_freq: words rarer in the training pairs become ``<unk>`` (without ``vocab_from``; course 5).
        vocab_from: the pretrained BERT whose vocabulary to use (``bert``, fine-tuning): a
            ``BERTPretrain`` checkpoint or the course's ``bert.small``/``bert.base`` zip or folder;
            ``zoo.fit`` sets it to the model's ``pretrained`` file.
        batch_size: pairs per batch (course: 256 for decomposable attention, 512 for BERT).
        seed: seed of the validation draw.
        download: fetch the course's ``snli_1.0.zip`` (MD5-checked) when no copy is found.
    """

    num_classes = len(LABELS)
    URL = "https://nlp.stanford.edu/projects/snli/snli_1.0.zip"
    MD5 = "981c3df556bbaea3f17f752456d0088c"  # as torchtext's SNLI

    def __init__(
        self,
        data_dir: str = "data",
        format: Format = "pair",
        train_split: str = "train",
        val_split: str = "dev",
        test_split: str = "test",
        val_fraction: float = 0.0,
        max_len: int = 50,
        min_freq: int = 5,
        vocab_from: str | None = None,
        batch_size: int = 256,
        seed: int = 0,
        download: bool = True,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.save_hyperparameters()
        if format not in ("pair", "bert"):
            raise ConfigError(f"format must be 'pair' or 'bert', got {format!r}")
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if max_len < (4 if format == "bert" else 1):
            raise ConfigError(f"max_len={max_len} is too short for the {format} format")
        self.data_dir = Path(data_dir).expanduser()
        self.input_format, self.max_len, self.min_freq = format, max_len, min_freq
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.val_fraction, self.vocab_from, self.seed, self.download = val_fraction, vocab_from, seed, download
        self.dropped: dict[str, int] = {}
        self._examples: dict[str, list[Example]] | None = None
        self._vocab: Vocab | None = None

    def _fetch(self) -> None:
        extract(download(self.URL, self.data_dir / "snli_1.0.zip", md5=self.MD5), self.data_dir)

    def paths(self) -> dict[str, Path]:
        """The file of each split named, ``.txt`` or ``.jsonl``, by ``find_data``'s policy."""
        names = dict.fromkeys(self.splits.values() if self.val_fraction == 0 else
                              (self.splits["train"], self.splits["test"]))  # fmt: skip
        files = {s: (f"snli_1.0_{s}.txt", f"snli_1.0_{s}.jsonl") for s in names}
        d = self.data_dir
        found = find_data("SNLI", [(folder, files) for folder in (d, d / "snli_1.0")],
                          system=[(SHARED / "snli_subset" / "snli_1.0", files)],
                          fetch=self._fetch if self.download else None, source=self.URL, no_fetch="download=False",
                          how="Put them there or pass --data.init_args.data_dir (the project's subset has only "
                              "dev and test: --data.init_args.train_split dev).")  # fmt: skip
        return found.paths

    def examples(self) -> dict[str, list[Example]]:
        """``train``, ``val`` and ``test`` examples (read once)."""
        if self._examples is None:
            read = {}
            for split, path in self.paths().items():
                read[split], self.dropped[split] = read_snli(path)
                log.info("SNLI: %d examples from %s (%d rows with gold label '-' dropped)", len(read[split]), path,
                         self.dropped[split])  # fmt: skip
            train = read[self.splits["train"]]
            if self.val_fraction > 0:
                # whole premises are held out: SNLI writes a hypothesis of each label for a premise, so
                # a held-out pair whose premise trains is scored against its siblings' memorised labels
                premises = list(dict.fromkeys(tuple(p) for p, _, _ in train))
                _, held = seeded_split(len(premises), self.val_fraction, self.seed)
                held = {premises[i] for i in held.tolist()}
                val, train = [e for e in train if tuple(e[0]) in held], [e for e in train if tuple(e[0]) not in held]
            else:
                val = read[self.splits["val"]]
            self._examples = {"train": train, "val": val, "test": read[self.splits["test"]]}
        return self._examples

    @property
    def vocab(self) -> Vocab:
        if self._vocab is None:
            if self.vocab_from is not None:
                self._vocab = read_bert_vocab(self.vocab_from)
            else:
                train = self.examples()["train"]
                reserved = ("<pad>", "<mask>", "<cls>", "<sep>") if self.input_format == "bert" else ("<pad>",)
                self._vocab = Vocab([t for p, h, _ in train for t in (*p, *h)], min_freq=self.min_freq,
                                    reserved_tokens=reserved)  # fmt: skip
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def label_counts(self, split: str) -> dict[str, int]:
        counts = Counter(y for _, _, y in self.examples()[split])
        return {name: counts[i] for i, name in enumerate(LABELS)}

    def encode(self, pairs: Sequence[tuple[list[str], list[str]]]) -> tuple[torch.Tensor, ...]:
        """The model inputs of token pairs in this module's format (``zoo nli`` uses the same)."""
        encode = encode_bert if self.input_format == "bert" else encode_pair
        return encode(pairs, self.vocab, self.max_len)

    def dataset(self, split: str) -> TensorDataset:
        examples = self.examples()[split]
        if not examples:
            raise ConfigError(f"SNLI: no examples in the {split} split ({self.splits[split]})")
        inputs = self.encode([(p, h) for p, h, _ in examples])
        labels = torch.tensor([y for _, _, y in examples], dtype=torch.long)
        if self.input_format == "bert":
            return BERTPairDataset(*inputs, labels)
        return SentencePairDataset(*inputs, labels, self.vocab["<pad>"])

    def prepare_data(self) -> None:
        self.paths()

    def setup(self, stage: str | None = None) -> None:
        self._train, self._val, self._test = (self.dataset(s) for s in ("train", "val", "test"))
