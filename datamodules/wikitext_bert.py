"""BERT pretraining data from WikiText-2 (the course's lecture 69, book section 15.9).

As the course's ``load_data_wiki``: a paragraph is a line of the tokenised text with at least two
sentences (lower-cased, split at `` . ``); every sentence and the next one make a pair, whose second
sentence is, half the time, a random sentence of a random paragraph instead (next-sentence
prediction, label 1 = is next); a pair is ``<cls> a <sep> b <sep>`` with segments 0 then 1, and
pairs longer than ``max_len`` are dropped. Of each pair, 15% of the tokens (``round(0.15 * len)``,
at least one; never ``<cls>`` or ``<sep>``) are chosen for prediction: 80% of them become
``<mask>``, 10% a random word, 10% stay as they are (masked-language-model targets). The
vocabulary (``<unk>``, ``<pad>``, ``<mask>``, ``<cls>``, ``<sep>``, then words seen at least
``min_freq`` times in the training paragraphs) is the training split's.

Unlike the course, which draws the masks once when it builds the data set, the training masks are
drawn afresh for every batch, so each epoch sees new ones (as RoBERTa's dynamic masking; the
next-sentence pairs are drawn once). Validation and test masks are drawn once, with a fixed seed,
so their losses compare across epochs. A random replacement word is drawn from the ordinary words
(the course draws from the whole vocabulary, ``<pad>`` and ``<cls>`` included).

The files are WikiText-2's ``wiki.{train,valid,test}.tokens`` (or pytorch/examples' names
``{train,valid,test}.txt``), found by the data modules' one policy and downloaded (MD5-checked)
when missing. The project's copy lacks the training file: ``train_on="valid+test"`` trains on the
paragraphs of ``valid.txt`` and ``test.txt`` and holds out a seeded ``val_fraction`` and
``test_fraction`` of them (say so when you report a number).

A batch is ``(tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_labels, nsp_labels)``:
``(B, T)``, ``(B, T)``, ``(B,)``, ``(B, P)``, ``(B, P)``, ``(B, P)``, ``(B,)`` with
``P = round(0.15 * max_len)``; ``mlm_weights`` is 1 at a real prediction, 0 at padding. Rows are
cut to the batch's longest pair.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from datamodules.base import TensorDataset, ZooDataModule, read_text
from datamodules.download import download, extract, find_data
from datamodules.language_model import SHARED, WikiText2
from datamodules.text import Vocab
from zoo.core.errors import ConfigError
from zoo.core.problems import DataError

log = logging.getLogger(__name__)
RESERVED = ("<pad>", "<mask>", "<cls>", "<sep>")
Paragraph = list[list[str]]
Pair = tuple[list[str], list[int], bool]


def read_paragraphs(text: str) -> list[Paragraph]:
    """The course's ``_read_wiki``: lines of at least two sentences, lower-cased, as sentences of words.
    (As the course's test, a one-sentence line that ends in `` . `` passes: it adds words, not pairs.)"""
    lines = [line.strip().lower().split(" . ") for line in text.split("\n") if len(line.split(" . ")) >= 2]
    return [[sentence.split() for sentence in line] for line in lines]


def tokens_and_segments(tokens_a: list[str], tokens_b: list[str] | None = None) -> tuple[list[str], list[int]]:
    """``<cls> a <sep> [b <sep>]`` and its segment ids (0 for a's part, 1 for b's)."""
    tokens, segments = ["<cls>", *tokens_a, "<sep>"], [0] * (len(tokens_a) + 2)
    if tokens_b is not None:
        tokens += [*tokens_b, "<sep>"]
        segments += [1] * (len(tokens_b) + 1)
    return tokens, segments


def nsp_pairs(paragraphs: Sequence[Paragraph], max_len: int, rng: random.Random) -> list[Pair]:
    """Each sentence with the next one (``is_next``) or, half the time, a random sentence of a
    random paragraph; pairs over ``max_len`` tokens (``<cls>`` and two ``<sep>`` included) are dropped."""
    pairs = []
    for paragraph in paragraphs:
        for a, b in zip(paragraph[:-1], paragraph[1:], strict=True):
            is_next = rng.random() < 0.5
            if not is_next:
                b = rng.choice(rng.choice(paragraphs))
            if len(a) + len(b) + 3 <= max_len:
                pairs.append((*tokens_and_segments(a, b), is_next))
    return pairs


def encode_pairs(pairs: Sequence[Pair], vocab: Vocab, max_len: int) -> tuple[torch.Tensor, ...]:
    """Pairs -> ``tokens`` and ``segments`` ``(N, max_len)`` (``<pad>``, segment 0 after the pair),
    ``valid_lens`` and ``nsp_labels`` ``(N,)``."""
    tokens = torch.full((len(pairs), max_len), vocab["<pad>"], dtype=torch.long)
    segments = torch.zeros((len(pairs), max_len), dtype=torch.long)
    for i, (toks, segs, _) in enumerate(pairs):
        tokens[i, : len(toks)] = torch.tensor(vocab[toks])
        segments[i, : len(segs)] = torch.tensor(segs)
    valid_lens = torch.tensor([len(t) for t, _, _ in pairs], dtype=torch.long)
    nsp = torch.tensor([is_next for _, _, is_next in pairs], dtype=torch.long)
    return tokens, segments, valid_lens, nsp


def mask_tokens(tokens: torch.Tensor, valid_lens: torch.Tensor, vocab: Vocab, num_preds: int,
                generator: torch.Generator) -> tuple[torch.Tensor, ...]:  # fmt: skip
    """The masked-language-model inputs of a batch ``tokens`` ``(B, T)``: the tokens with 15% of each
    row chosen (80% ``<mask>``, 10% a random ordinary word, 10% kept), and ``pred_positions``,
    ``mlm_weights``, ``mlm_labels`` ``(B, num_preds)`` (chosen positions in ascending order, then
    padding at position 0 with weight 0 and label 0)."""
    B, T = tokens.shape
    specials = torch.tensor(vocab[["<cls>", "<sep>"]])
    candidate = (torch.arange(T) < valid_lens[:, None]) & ~torch.isin(tokens, specials)  # (B, T)
    wanted = torch.round(valid_lens * 0.15).long().clamp(min=1, max=num_preds)  # the course's count
    scores = torch.rand(B, T, generator=generator).masked_fill(~candidate, 2.0)
    chosen = scores.argsort(dim=1)[:, :num_preds]  # a random order of the candidates, then the others
    take = (torch.arange(num_preds) < wanted[:, None]) & candidate.gather(1, chosen)  # (B, P)
    positions = torch.where(take, chosen, T).sort(dim=1).values  # ascending, the unused slots last
    take = positions < T
    positions = positions.masked_fill(~take, 0)
    labels = tokens.gather(1, positions).masked_fill(~take, 0)
    u = torch.rand(B, num_preds, generator=generator)
    first_word = vocab[RESERVED[-1]] + 1  # after <unk> and the reserved tokens
    random_words = torch.randint(first_word, len(vocab), (B, num_preds), generator=generator)
    new = torch.where(u < 0.8, vocab["<mask>"], torch.where(u < 0.9, labels, random_words))
    masked = tokens.clone()
    masked.scatter_(1, positions, torch.where(take, new, tokens.gather(1, positions)))
    return masked, positions, take.float(), labels


class BERTPretrainDataset(TensorDataset):
    """Encoded pairs; each batch is masked when fetched with ``generator`` (training: new masks
    every time), or masked once here (``generator=None``, with ``seed``: validation and test)."""

    def __init__(self, pairs: Sequence[Pair], vocab: Vocab, max_len: int, generator: torch.Generator | None = None,
                 seed: int = 0) -> None:  # fmt: skip
        if not pairs:
            raise ConfigError(f"no sentence pairs of at most max_len={max_len} tokens: too little text")
        super().__init__(*encode_pairs(pairs, vocab, max_len))
        self.vocab, self.num_preds, self.generator = vocab, round(max_len * 0.15), generator
        self.fixed = None
        if generator is None:
            tokens, _, valid_lens, _ = self.tensors
            self.fixed = mask_tokens(tokens, valid_lens, vocab, self.num_preds, torch.Generator().manual_seed(seed))

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, ...]:
        idx = torch.as_tensor(indices)
        tokens, segments, valid_lens, nsp = (t[idx] for t in self.tensors)
        if self.fixed is None:
            masked, positions, weights, labels = mask_tokens(tokens, valid_lens, self.vocab, self.num_preds,
                                                             self.generator)  # fmt: skip
        else:
            masked, positions, weights, labels = (t[idx] for t in self.fixed)
        width = int(valid_lens.max())  # the padding past the longest pair is masked anyway
        return masked[:, :width], segments[:, :width], valid_lens, positions, weights, labels, nsp


class WikiText2BERT(ZooDataModule):
    """WikiText-2 as BERT pretraining pairs (see the module's docstring).

    Args:
        data_dir: folder holding the WikiText-2 files (also tried: ``<data_dir>/wikitext-2``,
            ``<data_dir>/wikitext2``, then the project's ``../shared/data/wikitext2``).
        train_on: ``train`` (the training file; valid and test files for validation and test) or
            ``valid+test`` (the paragraphs of those two files, ``val_fraction`` and
            ``test_fraction`` of them held out).
        batch_size: pairs per batch (course: 512).
        max_len: most tokens per pair (course: 64).
        min_freq: words seen fewer times in the training paragraphs become ``<unk>`` (course: 5).
        val_fraction, test_fraction: held-out paragraphs with ``train_on="valid+test"``.
        seed: seed of the paragraph split, the pairs and the masks.
        download: fetch ``wikitext-2-v1.zip`` when no copy of the files is found.
    """

    URL = "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip"
    MD5 = "542ccefacc6c27f945fb54453812b3cd"  # as torchtext's WikiText2

    def __init__(
        self,
        data_dir: str = "data",
        train_on: Literal["train", "valid+test"] = "train",
        batch_size: int = 512,
        max_len: int = 64,
        min_freq: int = 5,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        seed: int = 0,
        download: bool = True,
    ) -> None:
        super().__init__(batch_size)  # no worker processes: each would draw its copy's masks
        self.save_hyperparameters()
        if train_on not in ("train", "valid+test"):
            raise ConfigError(f"train_on must be 'train' or 'valid+test', got {train_on!r}")
        if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
            raise ConfigError(f"val_fraction and test_fraction must be > 0 with a sum < 1, "
                             f"got {val_fraction} and {test_fraction}")  # fmt: skip
        if max_len < 5:
            raise ConfigError(f"max_len must be at least 5 (<cls>, two words, two <sep>), got {max_len}")
        self.data_dir = Path(data_dir).expanduser()
        self.train_on, self.max_len, self.min_freq, self.seed = train_on, max_len, min_freq, seed
        self.val_fraction, self.test_fraction, self.download = val_fraction, test_fraction, download
        self._paragraphs: dict[str, list[Paragraph]] | None = None
        self._vocab: Vocab | None = None

    def _fetch(self) -> None:
        extract(download(self.URL, self.data_dir / "wikitext-2-v1.zip", md5=self.MD5), self.data_dir)

    def paths(self) -> dict[str, Path]:
        """The files this ``train_on`` needs, by ``find_data``'s policy."""
        wanted = ("train", "valid", "test") if self.train_on == "train" else ("valid", "test")
        files = {f: WikiText2.NAMES[f] for f in wanted}
        d = self.data_dir
        hint = "" if self.train_on != "train" else " (the project's copy lacks the training file: try "
        hint += "" if self.train_on != "train" else "--data.init_args.train_on valid+test)"
        found = find_data("WikiText2BERT", [(folder, files) for folder in (d, d / "wikitext-2", d / "wikitext2")],
                          system=[(SHARED / "wikitext2", files)], fetch=self._fetch if self.download else None,
                          source=self.URL, no_fetch="download=False",
                          how=f"Put the files there or pass --data.init_args.data_dir{hint}.")  # fmt: skip
        return found.paths

    def paragraphs(self) -> dict[str, list[Paragraph]]:
        """``train``, ``val`` and ``test`` paragraphs (read once)."""
        if self._paragraphs is None:
            read = {f: read_paragraphs(read_text(p)) for f, p in self.paths().items()}
            if self.train_on == "train":
                self._paragraphs = {"train": read["train"], "val": read["valid"], "test": read["test"]}
            else:
                every = read["valid"] + read["test"]
                random.Random(self.seed).shuffle(every)
                n_val, n_test = int(len(every) * self.val_fraction), int(len(every) * self.test_fraction)
                self._paragraphs = {"val": every[:n_val], "test": every[n_val : n_val + n_test],
                                    "train": every[n_val + n_test :]}  # fmt: skip
                log.warning("WikiText2BERT: training on %d paragraphs of valid.txt and test.txt, %d and %d of "
                            "them held out for validation and test", len(self._paragraphs["train"]),
                            n_val, n_test)  # fmt: skip
        return self._paragraphs

    @property
    def vocab(self) -> Vocab:
        if self._vocab is None:
            sentences = [s for p in self.paragraphs()["train"] for s in p]
            self._vocab = Vocab(sentences, min_freq=self.min_freq, reserved_tokens=RESERVED)
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def pairs(self, split: str) -> list[Pair]:
        """The split's sentence pairs, drawn with a seed of the split's own."""
        rng = random.Random(f"{self.seed}-{split}")
        pairs = nsp_pairs(self.paragraphs()[split], self.max_len, rng)
        if not pairs:
            files = self.paths()
            source = files[{"val": "valid"}.get(split, split)] if self.train_on == "train" else \
                f"{files['valid']} + {files['test']}"  # fmt: skip
            raise DataError(f"{source} ({split} split)", [
                f"no sentence pairs of at most max_len={self.max_len} tokens (an empty or tiny text); expected "
                "lines of at least two sentences, ' . ' between them"])  # fmt: skip
        return pairs

    def prepare_data(self) -> None:
        self.paths()  # finds or downloads the files; raises naming them if that fails

    def setup(self, stage: str | None = None) -> None:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        masks = torch.Generator().manual_seed(self.seed + 1000 * (rank + 1))  # each process draws its own
        self._train = BERTPretrainDataset(self.pairs("train"), self.vocab, self.max_len, generator=masks)
        self._val = BERTPretrainDataset(self.pairs("val"), self.vocab, self.max_len, seed=self.seed + 1)
        self._test = BERTPretrainDataset(self.pairs("test"), self.vocab, self.max_len, seed=self.seed + 2)
