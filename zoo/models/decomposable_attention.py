"""Decomposable attention for natural language inference (Parikh et al., 2016, "A decomposable
attention model for natural language inference"; the course's book section 15.5).

Three steps, with no recurrence or convolution:

* **attend**: soft-align every premise word with the hypothesis words (``beta``) and every
  hypothesis word with the premise words (``alpha``), from ``e_ij = f(a_i) . f(b_j)``;
* **compare**: ``g`` maps each word with its aligned phrase, ``[a_i, beta_i]`` and ``[b_j, alpha_j]``;
* **aggregate**: sum the comparisons of each sentence, and ``h`` plus a linear layer classify the pair.

``f``, ``g`` and ``h`` are the course's two-layer MLPs with dropout. One departure: the course
attends to and sums over the ``<pad>`` tokens too, so a pair's label depends on how much it is
padded; here pads (``pad_index``) are masked out of both softmaxes and both sums
(``pad_index=None`` gives the course's behaviour).
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.models.registry import register_model


def _mlp(num_inputs: int, num_hiddens: int, dropout: float) -> nn.Sequential:
    """The course's ``mlp``: (dropout, linear, ReLU) twice."""
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(num_inputs, num_hiddens), nn.ReLU(),
        nn.Dropout(dropout), nn.Linear(num_hiddens, num_hiddens), nn.ReLU(),
    )  # fmt: skip


def _masked_softmax(scores: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis of ``scores (B, M, N)`` with key positions where ``keep (B, N)``
    is False left out (a finite fill: a pair with no valid key gets uniform weights, not NaN)."""
    if keep is not None:
        scores = scores.masked_fill(~keep[:, None, :], -1e9)
    return scores.softmax(dim=-1)


class DecomposableAttention(nn.Module):
    """``forward(premises (B, Lp), hypotheses (B, Lh)) -> logits (B, num_classes)``.

    ``self.embedding`` is the word table a task may fill with GloVe vectors
    (``zoo.ops.embeddings.load_token_embedding``) before training.
    """

    def __init__(self, vocab_size: int, num_classes: int = 3, embed_size: int = 100, num_hiddens: int = 200,
                 dropout: float = 0.2, pad_index: int | None = 1) -> None:  # fmt: skip
        super().__init__()
        self.pad_index = pad_index
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.f = _mlp(embed_size, num_hiddens, dropout)  # attend
        self.g = _mlp(2 * embed_size, num_hiddens, dropout)  # compare
        self.h = _mlp(2 * num_hiddens, num_hiddens, dropout)  # aggregate
        self.linear = nn.Linear(num_hiddens, num_classes)

    def _keep(self, tokens: torch.Tensor) -> torch.Tensor | None:
        return None if self.pad_index is None else tokens != self.pad_index

    def forward(self, premises: torch.Tensor, hypotheses: torch.Tensor) -> torch.Tensor:
        keep_a, keep_b = self._keep(premises), self._keep(hypotheses)  # (B, Lp), (B, Lh) or None
        A, B = self.embedding(premises), self.embedding(hypotheses)  # (B, Lp, E), (B, Lh, E)
        # attend
        e = torch.bmm(self.f(A), self.f(B).transpose(1, 2))  # (B, Lp, Lh)
        beta = torch.bmm(_masked_softmax(e, keep_b), B)  # (B, Lp, E): the hypothesis aligned to each a_i
        alpha = torch.bmm(_masked_softmax(e.transpose(1, 2), keep_a), A)  # (B, Lh, E)
        # compare
        V_A = self.g(torch.cat([A, beta], dim=2))  # (B, Lp, H)
        V_B = self.g(torch.cat([B, alpha], dim=2))  # (B, Lh, H)
        # aggregate
        if keep_a is not None:
            V_A, V_B = V_A * keep_a[..., None], V_B * keep_b[..., None]
        v = torch.cat([V_A.sum(dim=1), V_B.sum(dim=1)], dim=1)  # (B, 2H)
        return self.linear(self.h(v))  # (B, num_classes)


@register_model
def decomposable_attention(vocab_size: int = 10000, num_classes: int = 3, embed_size: int = 100,
                           num_hiddens: int = 200, dropout: float = 0.2,
                           pad_index: int | None = 1) -> DecomposableAttention:  # fmt: skip
    """The course's model (embed 100 as GloVe 6B 100d, 200 hidden, dropout 0.2). ``pad_index``:
    the vocabulary's ``<pad>`` (1 in a zoo ``Vocab`` whose first reserved token is ``<pad>``)."""
    return DecomposableAttention(vocab_size, num_classes, embed_size, num_hiddens, dropout, pad_index)
