"""Natural language inference: does a premise entail, contradict or say nothing of a hypothesis
(the course's book sections 16.5 and 16.7), by either of two models:

* **BERT fine-tuned** (``arch: bert_classifier``): ``pretrained`` names a ``BERTPretrain``
  checkpoint of ours or the course's ``bert.small``/``bert.base`` zip or folder (``zoo.models.bert.
  from_course``); its encoder and pooler weights are loaded (through the zoo's one safe loader)
  into a classifier of the same sizes with a new head on ``<cls>`` (``reset_pooler``: the encoder
  only, the pooler new as well), and its vocabulary is the one the data must use
  (``datamodules.SNLI(format="bert", vocab_from=<the same file>)``, which ``zoo.fit`` sets from
  ``pretrained``).
* **decomposable attention** (``arch: decomposable_attention``; Parikh et al., 2016), from scratch
  or with its embedding table (``model.embedding``) started from GloVe vectors: ``embedding``
  names a local GloVe/fastText text file (``zoo.ops.embeddings.load_token_embedding``).

A batch is the model's inputs followed by the labels, so one step serves both. Validation and
test accuracy are torchmetrics' (global under DDP); the vocabulary, the data's input format and
its ``max_len`` are kept in every checkpoint, for ``zoo nli``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from datamodules.text import Vocab, read_bert_vocab
from zoo.core.checkpoint import CheckpointError, load_checkpoint
from zoo.core.errors import ConfigError
from zoo.models import weights as pretrained_weights
from zoo.models.bert import from_course
from zoo.ops.embeddings import load_token_embedding
from zoo.tasks.base import Init, ZooTask
from zoo.tasks.media import MEDIA_SAMPLES, log_table

log = logging.getLogger(__name__)
LABELS = ("entailment", "contradiction", "neutral")  # datamodules.snli's order (the course's)
#: the pretraining weights a fine-tuned BERT takes; its MLM and NSP heads are left behind
PRETRAINED_PARTS = ("encoder.", "hidden.")


class NLI(ZooTask):
    """Trains ``arch`` on SNLI-style batches ``(*inputs, labels)``.

    Logs ``train/loss``, ``train/acc``, ``{val,test}/loss`` and ``{val,test}/acc``.

    Args:
        arch: ``bert_classifier`` or ``decomposable_attention``.
        vocab_size: linked from the data module (with ``pretrained``: must be the checkpoint's).
        num_classes: 3 (entailment, contradiction, neutral).
        arch_kwargs: further builder arguments; with ``pretrained`` the checkpoint's sizes are
            used and these may change only what does not shape a weight (``dropout``).
        pretrained: a ``BERTPretrain`` checkpoint or the course's bert.small/bert.base zip or folder
            whose encoder to fine-tune (for a course file not named bert.small/bert.base, give
            ``arch_kwargs`` ``num_heads``).
        reset_pooler: with ``pretrained``, load the encoder only and start the ``<cls>`` pooler
            (``hidden``, the NSP head's input in pretraining) afresh, as the head.
        embedding: a GloVe/fastText text file for ``model.embedding`` (decomposable attention).
        init: ``default``, ``xavier`` or ``normal`` (not with ``pretrained``).
        num_samples: validation pairs W&B shows as a table of predictions.
        **kwargs: optimizer and schedule settings, see ``ZooTask`` (course: Adam, lr 1e-4 for
            BERT, 0.001 for decomposable attention).
    """

    monitor = ("val/acc", "max")
    data_state = {"vocab": Vocab, "input_format": None, "max_len": None}

    def __init__(
        self,
        arch: str = "decomposable_attention",
        vocab_size: int = 100,
        num_classes: int = 3,
        arch_kwargs: dict[str, Any] | None = None,
        pretrained: str | None = None,
        reset_pooler: bool = False,
        embedding: str | None = None,
        init: Init = "default",
        num_samples: int = MEDIA_SAMPLES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.vocab: Vocab | None = None
        self.input_format: str | None = None  # the data's: "bert" or "pair"
        self.max_len: int | None = None  # the data's tokens per pair (bert) or sentence (pair)
        arch_kwargs = dict(arch_kwargs or {})
        weights = None
        if pretrained is not None:
            if init != "default":
                raise ConfigError(f"init={init!r} would overwrite the pretrained weights of {pretrained}")
            vocab_size, arch_kwargs, weights = self._read_pretrained(pretrained, arch_kwargs)
            # a fine-tuned checkpoint is rebuilt from these, without the pretraining file
            self.hparams.update(vocab_size=vocab_size, arch_kwargs=arch_kwargs, pretrained=None)
        self.model = self.build_model(arch, init, vocab_size=vocab_size, num_classes=num_classes, **arch_kwargs)
        if weights is not None:
            self._load_pretrained(pretrained, weights)
            if reset_pooler:  # a pooler trained for NSP may carry nothing SNLI can use
                for layer in self.model.hidden.modules():
                    if isinstance(layer, torch.nn.Linear):
                        layer.reset_parameters()
                log.info("NLI: the pooler starts afresh")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.test_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.num_samples, self._samples = num_samples, []

    # -- pretrained BERT -----------------------------------------------------------------------
    def _read_pretrained(self, path: str, overrides: dict[str, Any]) -> tuple[int, dict[str, Any], dict]:
        """The vocabulary size, builder sizes and encoder weights (the model's names) of ``path``:
        a ``BERTPretrain`` checkpoint or the course's bert.small/bert.base zip or folder."""
        if pretrained_weights.course_bundle(path):
            state, sizes = from_course(pretrained_weights.load(path), Path(path).name, overrides.get("num_heads"))
            self.vocab = read_bert_vocab(path)
            vocab_size = sizes.pop("vocab_size")
            if vocab_size != len(self.vocab):
                raise CheckpointError(f"--model.init_args.pretrained {path}: {len(self.vocab)} tokens in its "
                                      f"vocab.json for {vocab_size} rows of its token embedding")  # fmt: skip
        else:
            ckpt = load_checkpoint(path, require=("state_dict", "hyper_parameters"))
            hparams = ckpt["hyper_parameters"]
            if "vocab" not in ckpt or "vocab_size" not in hparams:
                raise CheckpointError(f"--model.init_args.pretrained {path}: holds no vocabulary; expected a "
                                      "checkpoint of zoo.tasks.BERTPretrain or the course's bert.small/bert.base "
                                      "zip or folder")  # fmt: skip
            sizes, vocab_size = dict(hparams.get("arch_kwargs") or {}), int(hparams["vocab_size"])
            self.vocab = Vocab.from_dict(ckpt["vocab"])
            state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
        changed = sorted(k for k, v in overrides.items() if k in sizes and k != "dropout" and sizes[k] != v)
        if changed:
            raise ConfigError(f"arch_kwargs {changed} differ from the pretrained model's "
                             f"{ {k: sizes[k] for k in changed} } in {path}")  # fmt: skip
        return vocab_size, {**sizes, **overrides}, state

    def _load_pretrained(self, path: str, state_dict: dict[str, torch.Tensor]) -> None:
        own = {k for k in self.model.state_dict() if k.startswith(PRETRAINED_PARTS)}
        theirs = {k: v for k, v in state_dict.items() if k.startswith(PRETRAINED_PARTS)}
        if set(theirs) != own:
            missing, unexpected = sorted(own - set(theirs)), sorted(set(theirs) - own)
            raise CheckpointError(f"--model.init_args.pretrained {path}: its weights do not fit {self.hparams.arch}: "
                                  f"missing {missing[:3]}, unexpected {unexpected[:3]}")  # fmt: skip
        self.model.load_state_dict(theirs, strict=False)
        log.info("NLI: %d pretrained tensors loaded from %s; the head is new", len(theirs), path)

    # -- the vocabulary and input format: from the data module, then in every checkpoint -------
    def setup(self, stage: str) -> None:
        vocab = getattr(getattr(self.trainer, "datamodule", None), "vocab", None)
        if isinstance(vocab, Vocab) and self.vocab is not None and vocab != self.vocab:
            raise ConfigError("the data's vocabulary is not the pretrained model's: leave --data.init_args.vocab_from "
                             "unset (zoo.fit takes it from --model.init_args.pretrained) or name the same "
                             "file")  # fmt: skip
        super().setup(stage)  # the vocabulary, input format and max_len, kept in every checkpoint
        if stage == "fit" and self.hparams.embedding and self.vocab is not None:
            self._load_embedding(self.hparams.embedding)

    def _load_embedding(self, path: str) -> None:
        table = getattr(self.model, "embedding", None)
        if not isinstance(table, torch.nn.Embedding):
            raise ConfigError(f"--model.init_args.embedding: {self.hparams.arch} has no embedding table to start "
                             "from word vectors")  # fmt: skip
        vectors, found = load_token_embedding(Path(path), list(self.vocab.idx_to_token))
        if vectors.shape != table.weight.shape:
            raise ConfigError(f"{path}: {vectors.shape[1]}-dimensional vectors for an embedding of "
                             f"{table.weight.shape[1]}; set arch_kwargs embed_size to {vectors.shape[1]}")  # fmt: skip
        with torch.no_grad():
            table.weight.copy_(vectors)
        log.warning("NLI: %d of %d vocabulary tokens found in %s", found, len(self.vocab), path)

    # -- steps ---------------------------------------------------------------------------------
    def data_state_problems(self, state: dict[str, Any] | None = None) -> list[str]:
        problems = super().data_state_problems(state)
        fmt = state.get("input_format") if state is not None else getattr(self, "input_format", None)
        if fmt is not None and fmt not in ("bert", "pair"):
            problems.append(f"input_format {fmt!r}, expected 'bert' or 'pair'")
        return problems

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        *inputs, y = batch
        logits = self.model(*inputs)  # (B, num_classes)
        loss = F.cross_entropy(logits, y)
        if stage == "train":
            acc = (logits.argmax(-1) == y).float().mean()
            self.log_dict({"train/loss": loss, "train/acc": acc}, on_step=False, on_epoch=True, batch_size=len(y),
                          prog_bar=True, sync_dist=True)  # fmt: skip
            return loss
        metric = self.val_acc if stage == "val" else self.test_acc
        metric.update(logits, y)
        self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=len(y), prog_bar=True, sync_dist=True)
        self.log(f"{stage}/acc", metric, on_epoch=True, prog_bar=True)
        if stage == "val" and len(self._samples) < self.num_samples and self.vocab is not None:
            probs = logits.softmax(-1)
            for i in range(min(len(y), self.num_samples - len(self._samples))):
                premise, hypothesis = self.sentences([x[i] for x in inputs])
                p, k = probs[i].max(-1)
                self._samples.append([premise, hypothesis, LABELS[int(y[i])], LABELS[int(k)], round(float(p), 3)])
        return loss

    def sentences(self, inputs: list[torch.Tensor]) -> tuple[str, str]:
        """The premise and hypothesis of one example's inputs, as text."""
        if self.input_format == "bert":
            tokens, _, valid_len = inputs
            words = self.vocab.to_tokens(tokens[: int(valid_len)].tolist())[1:-1]  # without <cls> and the last <sep>
            cut = words.index("<sep>")
            return " ".join(words[:cut]), " ".join(words[cut + 1 :])
        return tuple(" ".join(t for t in self.vocab.to_tokens(x.tolist()) if t != "<pad>") for x in inputs[:2])

    def on_validation_epoch_start(self) -> None:
        self._samples = []

    def on_validation_epoch_end(self) -> None:
        log_table(self.trainer, "val/predictions", ["premise", "hypothesis", "label", "predicted", "probability"],
                  self._samples)  # fmt: skip
        self._samples = []

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        *inputs, _ = batch
        return self.model(*inputs).softmax(-1)
