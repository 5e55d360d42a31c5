"""BERT pretraining: masked language modelling and next-sentence prediction (the course's lecture
70, book section 15.10).

The loss is the MLM cross-entropy averaged over the predicted tokens plus the NSP cross-entropy
averaged over the pairs, times ``nsp_weight`` (0: MLM alone). (The course's ``_get_batch_loss_bert``
multiplies a loss already averaged over every prediction slot, padding included, by the slots' 0/1
weights, so its MLM loss also counts the padded slots, which learn to predict ``<unk>`` at position
0; here padding has no weight.) Gradient clipping, if wanted, is the Trainer's ``gradient_clip_val``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from datamodules.text import Vocab
from zoo.tasks.base import EpochMean, Init, ZooTask
from zoo.tasks.media import MEDIA_SAMPLES, log_table


class BERTPretrain(ZooTask):
    """Pretrains ``arch`` (a model returning ``(mlm_logits, nsp_logits)``, e.g. ``bert``) on batches
    ``(tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_labels, nsp_labels)``.

    Logs ``{train,val,test}/mlm_loss`` (per predicted token), ``/nsp_loss`` (per pair), ``/loss``
    (``mlm_loss + nsp_weight * nsp_loss``) and ``{val,test}/mlm_acc``, ``/nsp_acc``, all global under
    DDP. The vocabulary is stored in every checkpoint (a ``vocab`` entry, a plain dict), which
    fine-tuning reads.

    Args:
        arch: model name in ``zoo.models`` (``bert``).
        vocab_size: linked from the data module.
        arch_kwargs: further keyword arguments for the builder (``num_hiddens``, ``num_layers``, ...).
        init: ``default`` (PyTorch's, as the course), ``xavier`` or ``normal``.
        nsp_weight: the NSP loss's factor in ``loss`` (course: 1). 0 trains on MLM alone (as RoBERTa),
            leaving the NSP head and its pooler untrained; ``nsp_loss`` and ``nsp_acc`` are still logged.
        num_samples: validation pairs whose masked-token predictions W&B shows as a table.
        **kwargs: optimizer and schedule settings, see ``ZooTask`` (course: Adam, lr 0.01).
    """

    monitor = ("val/loss", "min")
    data_state = {"vocab": Vocab}

    def __init__(
        self,
        arch: str = "bert",
        vocab_size: int = 10000,
        arch_kwargs: dict[str, Any] | None = None,
        init: Init = "default",
        nsp_weight: float = 1.0,
        num_samples: int = MEDIA_SAMPLES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.nsp_weight = nsp_weight
        self.model = self.build_model(arch, init, vocab_size=vocab_size, **(arch_kwargs or {}))
        self.num_samples = num_samples
        names = ("mlm_loss", "nsp_loss", "loss", "mlm_acc", "nsp_acc")
        self.means = torch.nn.ModuleDict({f"{stage}_{name}": EpochMean() for stage in ("train", "val", "test")
                                          for name in names})  # fmt: skip
        self.vocab: Vocab | None = None
        self._samples: list[list[str]] = []

    # -- steps ---------------------------------------------------------------------------------
    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        tokens, segments, valid_lens, positions, weights, labels, nsp = batch  # (B, T) x2, (B,), (B, P) x3, (B,)
        mlm_logits, nsp_logits = self.model(tokens, segments, valid_lens, positions)  # (B, P, V), (B, 2)
        n_preds = weights.sum()
        # over the flat (B * P, V) rows: the log-softmax of a transposed view runs on strided
        # memory, twice as slow (torch.profiler: 16% of a CPU step, against 7% flat)
        per_token = F.cross_entropy(mlm_logits.flatten(0, 1), labels.flatten(), reduction="none")  # (B * P,)
        mlm_loss = (per_token * weights.flatten()).sum() / n_preds
        nsp_loss = F.cross_entropy(nsp_logits, nsp)
        loss = mlm_loss + self.nsp_weight * nsp_loss
        figures = {"mlm_loss": (mlm_loss, n_preds), "nsp_loss": (nsp_loss, len(nsp)), "loss": (loss, len(nsp))}
        if stage != "train":
            mlm_hits = ((mlm_logits.argmax(-1) == labels).float() * weights).sum() / n_preds
            figures |= {"mlm_acc": (mlm_hits, n_preds), "nsp_acc": ((nsp_logits.argmax(-1) == nsp).float().mean(),
                                                                    len(nsp))}  # fmt: skip
        for name, (value, weight) in figures.items():
            mean: EpochMean = self.means[f"{stage}_{name}"]  # the epoch's mean over every process
            mean.update(value.detach(), weight=weight)
            self.log(f"{stage}/{name}", mean, on_step=False, on_epoch=True, prog_bar=name != "loss")
        if stage == "val" and len(self._samples) < self.num_samples and self.vocab is not None:
            self._keep_samples(tokens, valid_lens, positions, weights, labels, mlm_logits.argmax(-1))
        return loss

    def _keep_samples(self, tokens, valid_lens, positions, weights, labels, predicted) -> None:
        for i in range(min(len(tokens), self.num_samples - len(self._samples))):
            n = int(weights[i].sum())
            text = " ".join(self.vocab.to_tokens(tokens[i, : int(valid_lens[i])].tolist()))
            self._samples.append([text, " ".join(self.vocab.to_tokens(labels[i, :n].tolist())),
                                  " ".join(self.vocab.to_tokens(predicted[i, :n].tolist()))])  # fmt: skip

    def on_validation_epoch_start(self) -> None:
        self._samples = []

    def on_validation_epoch_end(self) -> None:
        log_table(self.trainer, "val/masked_predictions", ["input", "masked words", "predicted"], self._samples)
        self._samples = []
