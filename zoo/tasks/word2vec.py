"""word2vec: skip-gram with negative sampling (the course's book section 14.4).

Each example is a centre word with its context words (label 1) and noise words (label 0), padded
to the batch's longest row. The loss is the sigmoid binary cross-entropy of the scores ``u . v``,
averaged over each example's context and noise words (the mask leaves the padding out), then over
the examples: the course's ``SigmoidBCELoss`` / ``mask.sum(1) * mask.shape[1]``, so ``train/loss``
is on the course's scale (it reports 0.410 after 5 epochs on PTB). The course back-propagates the
batch's sum, here the mean (Adam's steps do not depend on the loss's scale).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from datamodules.text import Vocab
from zoo.tasks.base import EpochMean, ZooTask
from zoo.tasks.media import log_table


def nearest_words(model: torch.nn.Module, vocab: Vocab, words: list[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` nearest words (by the cosine of the centre vectors) of each of ``words``,
    with their similarity, best first; ``words`` must be in ``vocab``."""
    cos, idx = model.similar(torch.tensor(vocab[list(words)], device=model.center.weight.device), k)
    return [[(vocab.to_tokens(int(i)), float(c)) for c, i in zip(cs, ids, strict=True)]
            for cs, ids in zip(cos.cpu(), idx.cpu(), strict=True)]  # fmt: skip


def example_loss(scores: torch.Tensor, label: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each example's mean binary cross-entropy over its unmasked positions: ``(B, L) -> (B,)``."""
    bce = F.binary_cross_entropy_with_logits(scores, label, weight=mask, reduction="none")  # (B, L)
    return bce.sum(1) / mask.sum(1)


class Word2Vec(ZooTask):
    """Trains ``arch`` (``word2vec``: ``forward(center, contexts_negatives) -> scores``) on
    ``(center, contexts_negatives, mask, label)`` batches (``datamodules.PTBWord2Vec``).

    The training data's vocabulary is stored in every checkpoint (a ``vocab`` entry, a plain
    dict), so ``zoo similar`` needs no data files. Logs ``{train,val,test}/loss``; with W&B, a
    table of the ``queries``' nearest words at every validation.

    Args:
        arch: model name in ``zoo.models``.
        vocab_size: linked from the data module.
        arch_kwargs: further keyword arguments for the builder (``embed_size``).
        queries: words whose nearest words are shown at validation (those in the vocabulary).
        num_similar: how many nearest words each.
        **kwargs: optimizer and schedule settings, see ``ZooTask`` (course: Adam, lr 0.002).
    """

    monitor = ("val/loss", "min")
    data_state = {"vocab": Vocab}

    def __init__(
        self,
        arch: str = "word2vec",
        vocab_size: int = 10000,
        arch_kwargs: dict[str, Any] | None = None,
        queries: list[str] | None = None,
        num_similar: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.model = self.build_model(arch, vocab_size=vocab_size, **(arch_kwargs or {}))
        self.queries = list(queries) if queries is not None else ["chip", "intel", "market", "president"]
        self.num_similar = num_similar
        self.val_loss, self.test_loss = EpochMean(), EpochMean()
        self.vocab: Vocab | None = None

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        center, contexts_negatives, mask, label = batch  # (B, 1), (B, L), (B, L), (B, L)
        per_example = example_loss(self.model(center, contexts_negatives), label, mask)  # (B,)
        loss = per_example.mean()
        if stage == "train":
            self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=len(center), prog_bar=True,
                     sync_dist=True)  # fmt: skip
            return loss
        mean: EpochMean = getattr(self, f"{stage}_loss")  # over every process's examples
        mean.update(per_example.detach())
        self.log(f"{stage}/loss", mean, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_validation_epoch_end(self) -> None:
        words = [w for w in self.queries if self.vocab is not None and w in self.vocab]
        if words and self.trainer.is_global_zero:
            lists = nearest_words(self.model, self.vocab, words, self.num_similar)
            rows = [[w, ", ".join(f"{n} {c:.3f}" for n, c in near)] for w, near in zip(words, lists, strict=True)]
            log_table(self.trainer, "val/similar", ["word", "nearest (cosine)"], rows)
