"""BERT (Devlin et al., 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding"; the course's lectures 69-70, book sections 15.8-15.10 and 16.6-16.7).

* ``BERTEncoder``: the input representation (token, segment and learned position embeddings,
  summed) run through the blocks of the translation work's ``TransformerEncoder`` (its
  ``encode``), so there is one Transformer encoder in the zoo.
* ``MaskLM``: the masked-language-model head, an MLP over the encodings at the positions to
  predict; ``NextSentencePred``: two-way logits from the ``<cls>`` encoding after the
  ``Linear + tanh`` pooler (``hidden``).
* ``BERTModel`` (``bert``): pretraining, ``(mlm_logits, nsp_logits)``.
* ``BERTClassifier`` (``bert_classifier``): fine-tuning, the encoder and the pooler with a new
  ``head`` on ``<cls>`` (the course's ``BERTClassifier`` for SNLI: three classes).

As the course: no embedding scale or dropout, post-norm blocks, dropout 0.2 in them. Unlike the
course's ``BERTEncoder`` (biases in the attention projections) the blocks are the translation
Transformer's, whose projections are bias-free as in the course's lecture 68.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.models.transformer import TransformerEncoder
from zoo.registry import register_model


class BERTEncoder(nn.Module):
    """Token ids, segment ids ``(B, T)`` and valid lengths ``(B,)`` -> encodings ``(B, T, H)``.

    ``segments`` ``None`` puts every token in segment 0; ``valid_lens`` ``None``: no padding."""

    def __init__(self, vocab_size: int, num_hiddens: int = 128, ffn_num_hiddens: int = 256, num_heads: int = 2,
                 num_layers: int = 2, dropout: float = 0.2, max_len: int = 1000) -> None:  # fmt: skip
        super().__init__()
        self.num_hiddens, self.max_len = num_hiddens, max_len
        # the translation encoder: its embedding is BERT's token embedding and its blocks are BERT's;
        # its sinusoidal positions are not used (BERT learns them), hence a one-row table
        self.transformer = TransformerEncoder(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers,
                                              dropout, max_len=1)  # fmt: skip
        self.segment_embedding = nn.Embedding(2, num_hiddens)
        self.pos_embedding = nn.Parameter(torch.randn(1, max_len, num_hiddens))  # as the course: N(0, 1)

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.transformer.embedding

    def forward(self, tokens: torch.Tensor, segments: torch.Tensor | None = None,
                valid_lens: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        T = tokens.shape[1]
        if T > self.max_len:
            raise ValueError(f"BERT: {T} tokens exceed max_len={self.max_len}")
        X = self.token_embedding(tokens)  # (B, T, H)
        if segments is not None:
            X = X + self.segment_embedding(segments)
        else:
            X = X + self.segment_embedding.weight[0]
        X = X + self.pos_embedding[:, :T]
        return self.transformer.encode(X, valid_lens)  # (B, T, H)


class MaskLM(nn.Module):
    """Logits over the vocabulary at the positions to predict: ``(B, T, H)``, ``(B, P)`` -> ``(B, P, V)``
    (``pred_positions`` ``None``: at every position, ``(B, T, V)``)."""

    def __init__(self, vocab_size: int, num_hiddens: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(num_hiddens, num_hiddens), nn.ReLU(), nn.LayerNorm(num_hiddens),
                                 nn.Linear(num_hiddens, vocab_size))  # fmt: skip

    def forward(self, X: torch.Tensor, pred_positions: torch.Tensor | None = None) -> torch.Tensor:
        if pred_positions is not None:
            X = X.gather(1, pred_positions[..., None].expand(-1, -1, X.shape[-1]))  # (B, P, H)
        return self.mlp(X)


def pooler(num_hiddens: int) -> nn.Sequential:
    """The ``Linear + tanh`` on the ``<cls>`` encoding that NSP and fine-tuning heads read."""
    return nn.Sequential(nn.Linear(num_hiddens, num_hiddens), nn.Tanh())


class BERTModel(nn.Module):
    """BERT for pretraining: ``(tokens, segments, valid_lens, pred_positions)`` ->
    ``(mlm_logits (B, P, V), nsp_logits (B, 2))``; the NSP class 1 means "is the next sentence"."""

    def __init__(self, vocab_size: int, num_hiddens: int = 128, ffn_num_hiddens: int = 256, num_heads: int = 2,
                 num_layers: int = 2, dropout: float = 0.2, max_len: int = 1000) -> None:  # fmt: skip
        super().__init__()
        self.encoder = BERTEncoder(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout, max_len)
        self.hidden = pooler(num_hiddens)
        self.mlm = MaskLM(vocab_size, num_hiddens)
        self.nsp = nn.Linear(num_hiddens, 2)

    def forward(self, tokens: torch.Tensor, segments: torch.Tensor | None = None,
                valid_lens: torch.Tensor | None = None,
                pred_positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        encoded = self.encoder(tokens, segments, valid_lens)  # (B, T, H)
        return self.mlm(encoded, pred_positions), self.nsp(self.hidden(encoded[:, 0]))  # (B, P, V), (B, 2)


class BERTClassifier(nn.Module):
    """BERT for a sentence-pair classification: ``(tokens, segments, valid_lens)`` -> logits
    ``(B, num_classes)`` from the pooled ``<cls>`` encoding. ``encoder`` and ``hidden`` have the
    names (and shapes) of ``BERTModel``'s, so pretrained weights load by name; ``head`` is new."""

    def __init__(self, vocab_size: int, num_classes: int = 3, num_hiddens: int = 128, ffn_num_hiddens: int = 256,
                 num_heads: int = 2, num_layers: int = 2, dropout: float = 0.2,
                 max_len: int = 1000) -> None:  # fmt: skip
        super().__init__()
        self.encoder = BERTEncoder(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout, max_len)
        self.hidden = pooler(num_hiddens)
        self.head = nn.Linear(num_hiddens, num_classes)

    def forward(self, tokens: torch.Tensor, segments: torch.Tensor | None = None,
                valid_lens: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        encoded = self.encoder(tokens, segments, valid_lens)  # (B, T, H)
        return self.head(self.hidden(encoded[:, 0]))  # (B, num_classes)


@register_model
def bert(vocab_size: int = 10000, num_hiddens: int = 128, ffn_num_hiddens: int = 256, num_heads: int = 2,
         num_layers: int = 2, dropout: float = 0.2, max_len: int = 1000) -> BERTModel:  # fmt: skip
    """The course's small BERT for pretraining on WikiText-2 (128 wide, FFN 256, 2 heads, 2 blocks)."""
    return BERTModel(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout, max_len)


@register_model
def bert_classifier(vocab_size: int = 10000, num_classes: int = 3, num_hiddens: int = 128,
                    ffn_num_hiddens: int = 256, num_heads: int = 2, num_layers: int = 2, dropout: float = 0.2,
                    max_len: int = 1000) -> BERTClassifier:  # fmt: skip
    """BERT with a ``num_classes``-way head on ``<cls>`` (the course's SNLI fine-tuning: 3)."""
    return BERTClassifier(vocab_size, num_classes, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout,
                          max_len)  # fmt: skip
