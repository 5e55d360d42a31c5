"""word2vec's skip-gram with negative sampling (Mikolov et al., 2013, "Distributed representations
of words and phrases and their compositionality"; the course's book sections 14.1-14.4).

Every word has two vectors: ``v`` as a centre word (``center``) and ``u`` as a context word
(``context``). The score of a (centre, context-or-noise) pair is ``u . v``; the task trains it with
the sigmoid binary cross-entropy (context words are 1, noise words 0). The centre vectors are the
word embedding that ``similar`` (and ``zoo similar``) compares by cosine, as the course does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.models.registry import register_model


class SkipGram(nn.Module):
    """``forward(center (B,) or (B, 1), contexts_negatives (B, L)) -> scores (B, L)``."""

    def __init__(self, vocab_size: int, embed_size: int = 100) -> None:
        super().__init__()
        self.center = nn.Embedding(vocab_size, embed_size)  # v: the course's net[0]
        self.context = nn.Embedding(vocab_size, embed_size)  # u: the course's net[1]
        for embedding in (self.center, self.context):  # the course's init_weights
            nn.init.xavier_uniform_(embedding.weight)

    def forward(self, center: torch.Tensor, contexts_negatives: torch.Tensor) -> torch.Tensor:
        v = self.center(center.reshape(-1, 1))  # (B, 1, E)
        u = self.context(contexts_negatives)  # (B, L, E)
        return torch.bmm(v, u.transpose(1, 2)).squeeze(1)  # (B, L)

    @torch.no_grad()
    def similar(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` words whose centre vectors are closest by cosine to each query's:
        ``(similarities (Q, k), indices (Q, k))``, best first, the query itself left out."""
        W = F.normalize(self.center.weight, dim=1)  # (V, E)
        cos = W[queries] @ W.T  # (Q, V)
        cos[torch.arange(len(queries)), queries] = -2.0  # below any cosine: never the query itself
        return cos.topk(min(k, W.shape[0] - 1), dim=1)


@register_model
def word2vec(vocab_size: int = 10000, embed_size: int = 100) -> SkipGram:
    """The course's skip-gram (embed 100; PTB's vocabulary of 6,719 words at ``min_freq=10``)."""
    return SkipGram(vocab_size, embed_size)
