"""Sequence to sequence: machine translation with teacher forcing and BLEU (the course's
lectures 62-68).

Training feeds the decoder ``<bos>`` followed by the target shifted right (teacher forcing) and
takes the cross-entropy over each target's valid tokens (its words and ``<eos>``, not the
padding), averaged per token. (The course divides each sentence's summed loss by ``num_steps``
before averaging over tokens, so its printed loss is ours / ``num_steps``.) Gradient clipping is
the Trainer's: ``trainer.gradient_clip_val`` (the course clips the global norm at 1).

Validation and test also decode the sources, greedily (the test with ``beam_size`` > 1: beam
search), and score the translations against the untokenised references with corpus sacreBLEU
(torchmetrics' ``SacreBLEUScore``: its ``13a`` tokenisation, 4-grams, no smoothing), logged 0-100.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.text import SacreBLEUScore

from datamodules.text import Vocab, encode, preprocess_nmt, tokenize_nmt
from zoo.core.errors import ConfigError
from zoo.ops.bleu import course_bleu
from zoo.ops.decoding import beam_search, greedy_search
from zoo.tasks.base import EpochMean, Init, ZooTask
from zoo.tasks.media import log_table


def detokenize(ids: list[int], vocab: Vocab) -> str:
    return " ".join(vocab.to_tokens(ids))


class Seq2Seq(ZooTask):
    """Trains ``arch`` (a model of the zoo's seq2seq interface, ``zoo.ops.decoding``) on
    ``(src, src_len, tgt, tgt_len[, references])`` batches.

    The source and target vocabularies are stored in every checkpoint (``src_vocab`` and
    ``tgt_vocab`` entries, plain dicts), so ``zoo translate`` needs no data files. Logs
    ``train/loss``, ``{val,test}/loss`` (per target token) and ``{val,test}/bleu``.

    Args:
        arch: ``seq2seq``, ``bahdanau`` or ``transformer``.
        vocab_size: source and target vocabulary sizes, linked from the data module.
        arch_kwargs: further keyword arguments for the builder (``num_hiddens``, ``num_layers``, ...).
        init: ``xavier`` (the course's, for linear layers and GRU weights), ``default`` or ``normal``.
        max_len: most tokens decoded per sentence at validation and test (the course: ``num_steps``).
        beam_size: beam width at test (1: greedy); validation is always greedy.
        length_penalty: beam search's length normalisation exponent.
        num_samples: validation translations logged as a table when W&B logs the run.
        select_by: what picks the best checkpoint (and so the one tested): ``val/bleu`` (highest), or
            ``train/loss`` (lowest), for a run whose held-out BLEU means nothing, such as the
            course's 600 pairs, where it stays 0 for all 300 epochs.
        **kwargs: optimizer and schedule settings, see ``ZooTask`` (course: Adam, lr 0.005).
    """

    data_state = {"src_vocab": Vocab, "tgt_vocab": Vocab}

    def __init__(
        self,
        arch: str = "seq2seq",
        vocab_size: tuple[int, int] = (100, 100),
        arch_kwargs: dict[str, Any] | None = None,
        init: Init = "xavier",
        max_len: int = 10,
        beam_size: int = 1,
        length_penalty: float = 0.75,
        num_samples: int = 8,
        select_by: Literal["val/bleu", "train/loss"] = "val/bleu",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if select_by not in ("val/bleu", "train/loss"):
            raise ConfigError(f"select_by must be val/bleu or train/loss, got {select_by!r}")
        self.save_hyperparameters()
        self.monitor = ("val/bleu", "max") if select_by == "val/bleu" else ("train/loss", "min")
        self.model = self.build_model(arch, init, vocab_size=tuple(vocab_size), **(arch_kwargs or {}))
        if init == "xavier":  # the course's xavier_init_weights also covers the GRUs' weight matrices
            for m in self.model.modules():
                if isinstance(m, nn.GRU):
                    for name, p in m.named_parameters():
                        if name.startswith("weight"):
                            nn.init.xavier_uniform_(p)
        self.max_len, self.beam_size, self.length_penalty = max_len, beam_size, length_penalty
        self.num_samples = num_samples
        self.train_loss, self.val_loss, self.test_loss = EpochMean(), EpochMean(), EpochMean()
        self.val_bleu, self.test_bleu = SacreBLEUScore(tokenize="13a"), SacreBLEUScore(tokenize="13a")
        self.src_vocab: Vocab | None = None
        self.tgt_vocab: Vocab | None = None
        self._samples: list[list[str]] = []

    def special(self, token: str) -> int:
        """The target vocabulary's index of ``<bos>``, ``<eos>`` or ``<pad>``."""
        if self.tgt_vocab is None:
            raise ConfigError("Seq2Seq has no target vocabulary: train it on a data module with "
                             "src_vocab/tgt_vocab (datamodules.FraEng) or load it from a checkpoint")  # fmt: skip
        return self.tgt_vocab[token]

    # -- steps ---------------------------------------------------------------------------------
    def translate_ids(self, src: torch.Tensor, src_len: torch.Tensor | None, beam_size: int = 1,
                      max_len: int | None = None) -> list[list[int]]:  # fmt: skip
        """Target token ids (without ``<eos>``) for a batch of sources."""
        bos, eos = self.special("<bos>"), self.special("<eos>")
        max_len = self.max_len if max_len is None else max_len
        if beam_size > 1:
            return beam_search(self.model, src, src_len, bos, eos, max_len, beam_size, self.length_penalty)
        return greedy_search(self.model, src, src_len, bos, eos, max_len)

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        src, src_len, tgt, tgt_len = batch[:4]  # (B, S), (B,), (B, T), (B,)
        bos = torch.full_like(tgt[:, :1], self.special("<bos>"))
        logits = self.model(src, torch.cat([bos, tgt[:, :-1]], 1), src_len)  # (B, T, V): teacher forcing
        valid = torch.arange(tgt.shape[1], device=tgt.device) < tgt_len[:, None]  # (B, T)
        per_token = F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none")  # (B, T)
        n_tokens = valid.sum()
        loss = (per_token * valid).sum() / n_tokens
        mean: EpochMean = getattr(self, f"{stage}_loss")  # the epoch's loss per target token
        mean.update(loss.detach(), weight=n_tokens)
        self.log(f"{stage}/loss", mean, on_step=False, on_epoch=True, prog_bar=True)
        if stage == "train":
            return loss
        references = batch[4]
        beam = self.beam_size if stage == "test" else 1
        translations = [detokenize(ids, self.tgt_vocab) for ids in self.translate_ids(src, src_len, beam)]
        getattr(self, f"{stage}_bleu").update(translations, [[r] for r in references])
        if stage == "val" and len(self._samples) < self.num_samples:
            sources = [detokenize(row[:n].tolist()[:-1], self.src_vocab) for row, n in zip(src, src_len, strict=True)]
            self._samples += [list(s) for s in zip(sources, references, translations, strict=True)]
        return loss

    def _log_bleu(self, stage: str) -> None:
        bleu: SacreBLEUScore = getattr(self, f"{stage}_bleu")
        self.log(f"{stage}/bleu", bleu.compute() * 100, prog_bar=True)  # compute() sums every process's counts
        bleu.reset()

    def on_validation_epoch_start(self) -> None:
        self._samples = []

    def on_validation_epoch_end(self) -> None:
        self._log_bleu("val")
        samples, self._samples = self._samples[: self.num_samples], []
        log_table(self.trainer, "val/translations", ["source", "reference", "translation"], samples)

    def on_test_epoch_end(self) -> None:
        self._log_bleu("test")


# -- translating sentences with a trained task: zoo translate, the benches, the course checks --
@dataclass
class Translation:
    source: str  # preprocessed
    translation: str
    bleu: float | None = None
    attention: torch.Tensor | None = None  # (len(translation) + 1, len(source) + 1)


def translate(task: Seq2Seq, sentences: list[str], beam: int = 1, max_len: int | None = None,
              references: list[str] | None = None, attention: bool = False) -> list[Translation]:  # fmt: skip
    """Translations of ``sentences`` (decoded together as one batch)."""
    tokens = [tokenize_nmt(preprocess_nmt(s)) for s in sentences]
    empty = [i + 1 for i, t in enumerate(tokens) if not t]
    if empty:
        raise ConfigError(f"sentence {', '.join(map(str, empty))} is empty: nothing to translate")
    if references is not None and len(references) != len(sentences):
        raise ConfigError(f"{len(references)} references for {len(sentences)} sentences: give one per sentence")
    unknown = sorted({w for t in tokens for w in t if w not in task.src_vocab})
    if unknown:
        print(f"note: not in the source vocabulary, read as <unk>: {', '.join(unknown)}", file=sys.stderr)
    device = next(task.parameters()).device
    src, src_len = (t.to(device) for t in encode(tokens, task.src_vocab, None))
    ids = task.translate_ids(src, src_len, beam, max_len)
    results = [Translation(" ".join(t), detokenize(row, task.tgt_vocab)) for t, row in zip(tokens, ids, strict=True)]
    if references is not None:
        for r, ref in zip(results, references, strict=True):
            r.bleu = course_bleu(r.translation, " ".join(tokenize_nmt(preprocess_nmt(ref))))
    if attention:
        _attach_attention(task, src, src_len, ids, results)
    return results


@torch.no_grad()
def _attach_attention(task: Seq2Seq, src: torch.Tensor, src_len: torch.Tensor, ids: list[list[int]],
                      results: list[Translation]) -> None:  # fmt: skip
    """The decoder's attention while it reads back its own translation (teacher forcing on it)."""
    if "return_attention" not in inspect.signature(task.model.forward).parameters:
        raise ConfigError(f"--attention_png: {task.hparams.arch} has no attention over the source")
    bos = task.special("<bos>")
    for i, (row, r) in enumerate(zip(ids, results, strict=True)):
        n = int(src_len[i])
        tgt_in = torch.tensor([[bos, *row]], device=src.device)
        _, weights = task.model(src[i : i + 1, :n], tgt_in, src_len[i : i + 1], return_attention=True)
        r.attention = weights[0].float().cpu()  # (len(row) + 1, n)
