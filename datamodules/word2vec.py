"""Skip-gram training examples from Penn Treebank (the course's book section 14.3, its
``load_data_ptb``).

The course's pipeline, vectorised with torch (the course's loops in Python over every word):

1. sentences are PTB's lines; the vocabulary keeps words seen at least ``min_freq`` (10) times
   in the training split, and every ``<unk>`` is dropped from the sentences;
2. **subsampling**: a word of training frequency ``f(w)`` (count / total) is kept with probability
   ``min(1, sqrt(t / f(w)))``, ``t`` = 1e-4, so "the" and "a" lose most of their occurrences;
3. **centres and contexts**: every word of a sentence of at least 2 words is a centre; its context
   is the words within a window drawn uniformly from 1..``max_window_size`` (5) on either side;
4. **negative sampling**: ``num_noise_words`` (5) noise words per context word, drawn from the
   vocabulary by unigram count ** 0.75 (``<unk>`` never), redrawn where one is a context word;
5. **batches**: ``(center (B, 1), contexts_negatives (B, L), mask (B, L), label (B, L))``, each
   row its contexts, then its noise words, then 0-padding up to the batch's longest row; ``mask``
   is 1 on contexts and noise words, ``label`` 1 on contexts.

As in the course the examples are drawn once (from generators seeded with ``seed``, another per
split); the loader shuffles them each epoch. Validation and test are PTB's ``valid`` and ``test``
lines through the same steps (with the training split's frequencies). One course bug is not
copied: d2l 1.0.3 sorts its vocabulary alphabetically, so its index 0 is ``"$"``, not ``<unk>``,
and its noise weights, which skip index 0, never draw ``"$"``; here only ``<unk>`` is left out.
"""

from __future__ import annotations

from collections import Counter
from functools import partial

import torch

from datamodules.base import TensorDataset, ZooDataModule
from datamodules.language_model import PennTreebank
from datamodules.text import Vocab
from zoo.core.errors import ConfigError
from zoo.core.problems import DataError

EOS = "<eos>"  # PennTreebank's end of line, where one sentence stops


def sentences_of(tokens: list[str]) -> list[list[str]]:
    """PennTreebank's word tokens (every line followed by ``<eos>``) back into lines."""
    out, line = [], []
    for token in tokens:
        if token == EOS:
            out.append(line)
            line = []
        else:
            line.append(token)
    return [*out, line] if line else out


def flatten(sentences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``(N,)`` and each token's sentence number ``(N,)``."""
    ids = torch.tensor([i for line in sentences for i in line], dtype=torch.long)
    lengths = torch.tensor([len(s) for s in sentences], dtype=torch.long)  # long even when there is none
    sent = torch.repeat_interleave(torch.arange(len(sentences)), lengths)
    return ids, sent


def keep_probabilities(counts: torch.Tensor, t: float = 1e-4) -> torch.Tensor:
    """The course's subsampling: word ``w`` is kept with probability ``sqrt(t / f(w))`` (capped at
    1), ``f(w) = counts[w] / counts.sum()``; ``counts (V,)`` (a word never seen is always kept)."""
    freq = counts.double() / counts.sum()
    return torch.where(counts > 0, (t / freq).sqrt(), torch.ones_like(freq)).clamp(max=1).float()


def subsample(ids: torch.Tensor, sent: torch.Tensor, keep: torch.Tensor, generator: torch.Generator):
    """The tokens kept by subsampling (``keep (V,)``: each word's probability), with their sentences."""
    kept = torch.rand(len(ids), generator=generator) < keep[ids]
    return ids[kept], sent[kept]


def centers_and_contexts(ids: torch.Tensor, sent: torch.Tensor, max_window_size: int, generator: torch.Generator):
    """Every token with at least one context word: ``(centers (N,), contexts (N, 2W), n_context (N,))``,
    contexts in sentence order, left-aligned, padded with -1. Each centre's window is drawn from
    1..``max_window_size`` (``W``) and cut at its sentence's ends, as the course's
    ``get_centers_and_contexts``."""
    n, W = len(ids), max_window_size
    window = torch.randint(1, W + 1, (n,), generator=generator)  # (n,)
    offsets = torch.cat([torch.arange(-W, 0), torch.arange(1, W + 1)])  # (2W,) in sentence order
    pos = torch.arange(n)[:, None] + offsets  # (n, 2W)
    inside = (pos >= 0) & (pos < n) & (offsets.abs() <= window[:, None])
    pos = pos.clamp(0, max(n - 1, 0))
    valid = inside & (sent[pos] == sent[:, None])  # (n, 2W): same sentence, within the window
    contexts = torch.where(valid, ids[pos], -1)
    order = torch.sort((~valid).to(torch.int8), dim=1, stable=True).indices  # valid ones first, in order
    contexts, n_context = contexts.gather(1, order), valid.sum(1)
    has = n_context > 0  # a one-word sentence has no pairs
    return ids[has], contexts[has], n_context[has]


def noise_weights(counts: torch.Tensor, unk: int = 0) -> torch.Tensor:
    """Negative sampling's distribution: unigram count ** 0.75, none for ``<unk>``."""
    weights = counts.double() ** 0.75
    weights[unk] = 0
    return weights


def negatives(contexts: torch.Tensor, n_context: torch.Tensor, weights: torch.Tensor, K: int,
              generator: torch.Generator, chunk: int = 65536, source: str = "the corpus") -> torch.Tensor:  # fmt: skip
    """``K`` noise words per context word, ``(N, 2W * K)`` left-aligned (row ``i``'s first
    ``K * n_context[i]`` are used), drawn by ``weights`` and redrawn where one is a context word
    of its row (the course's ``get_negatives``)."""
    n, width = contexts.shape[0], contexts.shape[1] * K
    out = torch.zeros(n, width, dtype=torch.long)
    missed = []
    for rows in torch.arange(n).split(chunk):
        cand = torch.multinomial(weights, len(rows) * (width + 8), replacement=True, generator=generator)
        cand = cand.view(len(rows), width + 8)  # (r, C): a few spare draws for the rejected ones
        ok = ~(cand[:, :, None] == contexts[rows, None, :]).any(-1)  # (r, C): not a context word
        order = torch.sort((~ok).to(torch.int8), dim=1, stable=True).indices[:, :width]
        out[rows] = cand.gather(1, order)
        missed.append(rows[ok.sum(1) < K * n_context[rows]])
    # rows whose draws held too many context words: drawn from the weights without their contexts,
    # which is what rejecting and redrawing samples from
    for rows in torch.cat(missed).split(1024):
        banned = torch.zeros(len(rows), len(weights) + 1, dtype=torch.bool).scatter_(1, contexts[rows] + 1, True)
        w = weights.expand(len(rows), -1).masked_fill(banned[:, 1:], 0)  # (r, V); column 0 of banned: the pads
        if (w.sum(1) == 0).any():
            raise DataError(source, ["a centre's context words are all the words noise can be drawn from; "
                                     "use a larger corpus"])  # fmt: skip
        out[rows] = torch.multinomial(w, width, replacement=True, generator=generator)
    return out


def skipgram_examples(ids, sent, keep, weights, max_window_size: int, K: int, seed: int,
                      source: str = "the corpus") -> TensorDataset:  # fmt: skip
    """Steps 2-4 on one split: a dataset of ``(center, contexts_negatives, mask, label)`` batches;
    a split without a single (centre, context) pair is a ``DataError`` naming ``source``."""
    g = torch.Generator().manual_seed(seed)
    ids, sent = subsample(ids, sent, keep, g)
    centers, contexts, n_context = centers_and_contexts(ids, sent, max_window_size, g)
    if len(centers) == 0:
        raise DataError(source, [f"no two vocabulary words share a sentence after subsampling ({len(ids)} words "
                                 "kept): no skip-gram pair to train or score on; give a longer text"])  # fmt: skip
    noise = negatives(contexts, n_context, weights, K, g, source=source)
    # each row: its contexts, then its K * n_context noise words, then 0s
    W2 = contexts.shape[1]
    used = torch.cat([torch.arange(W2) < n_context[:, None], torch.arange(W2 * K) < K * n_context[:, None]], 1)
    rows = torch.cat([contexts.clamp(min=0), noise], 1)
    order = torch.sort((~used).to(torch.int8), dim=1, stable=True).indices
    rows = torch.where(used.gather(1, order), rows.gather(1, order), 0)
    return TensorDataset(centers.int(), rows.int(), n_context, transform=partial(pad_batch, K=K))


def pad_batch(center: torch.Tensor, rows: torch.Tensor, n_context: torch.Tensor, K: int) -> tuple:
    """A batch cut to its longest row: ``(center (B, 1), contexts_negatives (B, L), mask (B, L),
    label (B, L))``, the course's ``batchify``."""
    length = int(n_context.max()) * (K + 1)
    pos = torch.arange(length)
    mask = (pos < n_context[:, None] * (K + 1)).float()
    label = (pos < n_context[:, None]).float()
    return center.long()[:, None], rows[:, :length].long(), mask, label


class PTBWord2Vec(ZooDataModule):
    """Penn Treebank as skip-gram examples with negative sampling (the course's settings).

    PTB is found (or downloaded) by ``datamodules.PennTreebank``: ``ptb.{train,valid,test}.txt`` in
    ``data_dir``, ``data_dir/ptb`` or ``data_dir/ptb/ptb``, then ``../shared/data/ptb/ptb``.

    Args:
        data_dir: folder holding PTB.
        batch_size: examples (centre words) per batch (course: 512).
        max_window_size: largest context window on either side (course: 5).
        num_noise_words: noise words per context word (course: 5).
        min_freq: words rarer than this in the training split are dropped as ``<unk>`` (course: 10).
        subsample_t: the subsampling threshold ``t`` (course: 1e-4).
        seed: seed of the subsampling, windows and noise words (the loader's shuffling follows
            ``seed_everything``).
        download: fetch PTB when it is nowhere on disk.
    """

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 512,
        max_window_size: int = 5,
        num_noise_words: int = 5,
        min_freq: int = 10,
        subsample_t: float = 1e-4,
        seed: int = 0,
        download: bool = True,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.save_hyperparameters()
        if max_window_size < 1 or num_noise_words < 1:
            raise ConfigError(f"max_window_size ({max_window_size}) and num_noise_words ({num_noise_words}) "
                             "must be at least 1")  # fmt: skip
        self.ptb = PennTreebank(data_dir=data_dir, level="word", download=download)
        self.max_window_size, self.num_noise_words = max_window_size, num_noise_words
        self.min_freq, self.subsample_t, self.seed = min_freq, subsample_t, seed
        self._vocab: Vocab | None = None

    def sentences(self, split: str) -> list[list[str]]:
        return sentences_of(self.ptb.tokens()[split])

    @property
    def vocab(self) -> Vocab:
        if self._vocab is None:
            self._vocab = Vocab(self.sentences("train"), min_freq=self.min_freq)
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def split_ids(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A split's token ids without ``<unk>`` (step 1), and their sentence numbers."""
        vocab = self.vocab
        return flatten([[i for i in vocab[line] if i != vocab.unk] for line in self.sentences(split)])

    def counts(self) -> torch.Tensor:
        """Each vocabulary word's count in the training split (``<unk>``: 0)."""
        counter = Counter(self.split_ids("train")[0].tolist())
        return torch.tensor([counter.get(i, 0) for i in range(len(self.vocab))], dtype=torch.long)

    def prepare_data(self) -> None:
        self.ptb.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        counts = self.counts()
        if counts.sum() == 0:
            raise DataError(self.ptb.sources.get("train", "PTB"), [
                f"no word occurs at least min_freq={self.min_freq} times (an empty or tiny text): no word to "
                "learn, and none to draw as noise"])  # fmt: skip
        keep, weights = keep_probabilities(counts, self.subsample_t), noise_weights(counts, self.vocab.unk)
        sets = {
            split: skipgram_examples(
                *self.split_ids(split), keep, weights, self.max_window_size, self.num_noise_words, self.seed + i,
                source=f"{self.ptb.sources.get(split, 'PTB')} ({split} split)",
            )  # fmt: skip
            for i, split in enumerate(("train", "val", "test"))
        }
        self._train, self._val, self._test = sets["train"], sets["val"], sets["test"]
