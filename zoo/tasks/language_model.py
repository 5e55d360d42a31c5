"""Language modelling: next-token cross-entropy and perplexity (the course's lectures 54-59).

Perplexity is the exponential of the mean per-token cross-entropy (book section 8.4): 1 means
the next token is always certain, ``vocab_size`` is a uniform guess. Gradient clipping, which
recurrent nets need against exploding gradients, is the Trainer's: set
``trainer.gradient_clip_val`` (the course clips the global norm at 1).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from torchmetrics.text import Perplexity

from datamodules.text import Tokenizer, Vocab
from zoo.core.errors import ConfigError
from zoo.models.rnn import detach_state
from zoo.tasks.base import EpochMean, Init, ZooTask


class EpochPerplexity(EpochMean):
    """exp of the token-weighted mean of per-batch losses (``update(loss, weight=tokens)``)."""

    def compute(self) -> torch.Tensor:
        return super().compute().exp()


class LanguageModel(ZooTask):
    """Trains ``arch`` (a model returning ``(logits, state)``) on ``(X, Y, reset)`` batches.

    The hidden state is carried from batch to batch, detached so that gradients stop at the
    batch boundary, and dropped where a batch says ``reset`` (every batch of random sampling,
    the first of each sequential pass): the data module decides, the task follows.

    The training data's vocabulary and tokenizer are stored in every checkpoint (``vocab`` and
    ``tokenizer`` entries, plain dicts) and restored by ``load_from_checkpoint``, so generation
    needs no data files. Logs ``{train,val,test}/loss`` and ``{train,val,test}/ppl``.

    Args:
        arch: model name in ``zoo.models`` (``rnn_scratch``, ``rnn``, ``gru``, ``lstm``, ...).
        vocab_size: linked from the data module.
        arch_kwargs: further keyword arguments for the builder (``num_hiddens``, ``num_layers``).
        init: ``default``, ``xavier`` or ``normal``, see ``ZooTask``.
        **kwargs: optimizer and schedule settings, see ``ZooTask`` (course: SGD, lr 1).
    """

    monitor = ("val/ppl", "min")
    data_state = {"vocab": Vocab, "tokenizer": Tokenizer}

    def __init__(
        self,
        arch: str = "rnn",
        vocab_size: int = 28,
        arch_kwargs: dict[str, Any] | None = None,
        init: Init = "default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.model = self.build_model(arch, init, vocab_size=vocab_size, **(arch_kwargs or {}))
        if getattr(self.model, "bidirectional", False):
            rank_zero_warn(f"{arch} is bidirectional: it sees the tokens it predicts, so its perplexity "
                           "means nothing and it cannot generate (see zoo/models/rnn.py)")  # fmt: skip
        self.val_ppl, self.test_ppl = Perplexity(), Perplexity()
        self.train_ppl = EpochPerplexity()  # from the loss already computed, not again from the logits
        self.vocab: Vocab | None = None
        self.tokenizer: Tokenizer | None = None
        self._states: dict[str, Any] = {}

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        X, Y, reset = batch  # (B, T), (B, T), bool
        state = None if reset else self._states.get(stage)
        logits, state = self.model(X, state)  # (B, T, vocab)
        self._states[stage] = detach_state(state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
        if stage == "train":  # the epoch's perplexity is exp of its mean loss per token
            self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=Y.numel(), prog_bar=True,
                     sync_dist=True)  # fmt: skip
            self.train_ppl.update(loss.detach(), weight=Y.numel())
            self.log("train/ppl", self.train_ppl, on_step=False, on_epoch=True, prog_bar=True)
            return loss
        ppl: Perplexity = getattr(self, f"{stage}_ppl")
        ppl.update(logits.detach(), Y)
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=X.shape[0])
        self.log(f"{stage}/ppl", ppl, on_epoch=True, prog_bar=True, batch_size=X.shape[0])
        return loss


# -- generating text with a trained task: zoo generate and the course checks --------------------
@torch.no_grad()
def generate(
    model: torch.nn.Module,
    vocab: Vocab,
    tokenizer: Tokenizer,
    prefix: str,
    num_tokens: int,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> str:
    """``prefix`` followed by ``num_tokens`` generated tokens, as text."""
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0 (0: greedy), got {temperature}")
    if num_tokens < 0:
        raise ConfigError(f"num_tokens must be >= 0, got {num_tokens}")
    tokens = tokenizer(prefix)
    if not tokens:
        raise ConfigError(f"the prefix {prefix!r} has no tokens after {tokenizer} normalisation")
    unknown = sorted({t for t in tokens if t not in vocab})
    if len(unknown) == len(set(tokens)):  # the model would start from <unk> alone
        raise ConfigError(f"the prefix {prefix!r} holds no token of the model's vocabulary (unknown: "
                         f"{', '.join(map(repr, unknown))}; known: {_sample(vocab)})")  # fmt: skip
    if unknown:
        warnings.warn(f"prefix tokens outside the vocabulary, read as {vocab.unk_token}: "
                      f"{', '.join(map(repr, unknown))}", stacklevel=2)  # fmt: skip
    device = next(model.parameters()).device
    model.eval()
    indices = vocab[tokens]
    logits, state = model(torch.tensor([indices], device=device))  # warm-up on the whole prefix
    out: list[int] = []
    for _ in range(num_tokens):
        last = logits[0, -1]  # (vocab,)
        if temperature == 0:
            nxt = int(last.argmax())
        else:
            probs = torch.softmax(last.float() / temperature, -1).cpu()
            nxt = int(torch.multinomial(probs, 1, generator=generator))
        out.append(nxt)
        logits, state = model(torch.tensor([[nxt]], device=device), state)
    return tokenizer.detokenize([*tokens, *vocab.to_tokens(out)])


def _sample(vocab: Vocab, n: int = 12) -> str:
    shown = ", ".join(repr(t) for t in vocab.idx_to_token[:n])
    return f"{shown}, ... ({len(vocab)} tokens)" if len(vocab) > n else shown
