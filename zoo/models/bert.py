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
Transformer's, whose projections are bias-free as in the course's lecture 68; ``attention_bias``
gives them biases, and ``from_course`` maps the course's pretrained ``bert.small`` / ``bert.base``
weights (``d2l.torch.BERTModel``'s names) onto these modules.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from zoo.core.errors import ConfigError
from zoo.models.registry import register_model
from zoo.models.transformer import TransformerEncoder


class BERTEncoder(nn.Module):
    """Token ids, segment ids ``(B, T)`` and valid lengths ``(B,)`` -> encodings ``(B, T, H)``.

    ``segments`` ``None`` puts every token in segment 0; ``valid_lens`` ``None``: no padding."""

    def __init__(self, vocab_size: int, num_hiddens: int = 128, ffn_num_hiddens: int = 256, num_heads: int = 2,
                 num_layers: int = 2, dropout: float = 0.2, max_len: int = 1000,
                 attention_bias: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.num_hiddens, self.max_len = num_hiddens, max_len
        # the translation encoder: its embedding is BERT's token embedding and its blocks are BERT's;
        # its sinusoidal positions are not used (BERT learns them), hence a one-row table
        self.transformer = TransformerEncoder(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers,
                                              dropout, max_len=1, bias=attention_bias)  # fmt: skip
        self.segment_embedding = nn.Embedding(2, num_hiddens)
        self.pos_embedding = nn.Parameter(torch.randn(1, max_len, num_hiddens))  # as the course: N(0, 1)

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.transformer.embedding

    def forward(self, tokens: torch.Tensor, segments: torch.Tensor | None = None,
                valid_lens: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        T = tokens.shape[1]
        if T > self.max_len:
            raise ConfigError(f"BERT: {T} tokens exceed max_len={self.max_len}")
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
                 num_layers: int = 2, dropout: float = 0.2, max_len: int = 1000,
                 attention_bias: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.encoder = BERTEncoder(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout, max_len,
                                   attention_bias)  # fmt: skip
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
                 num_heads: int = 2, num_layers: int = 2, dropout: float = 0.2, max_len: int = 1000,
                 attention_bias: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.encoder = BERTEncoder(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout, max_len,
                                   attention_bias)  # fmt: skip
        self.hidden = pooler(num_hiddens)
        self.head = nn.Linear(num_hiddens, num_classes)

    def forward(self, tokens: torch.Tensor, segments: torch.Tensor | None = None,
                valid_lens: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        encoded = self.encoder(tokens, segments, valid_lens)  # (B, T, H)
        return self.head(self.hidden(encoded[:, 0]))  # (B, num_classes)


@register_model
def bert(vocab_size: int = 10000, num_hiddens: int = 128, ffn_num_hiddens: int = 256, num_heads: int = 2,
         num_layers: int = 2, dropout: float = 0.2, max_len: int = 1000,
         attention_bias: bool = False) -> BERTModel:  # fmt: skip
    """The course's small BERT for pretraining on WikiText-2 (128 wide, FFN 256, 2 heads, 2 blocks);
    ``attention_bias``: biases in the attention projections, as the course's files (``from_course``)."""
    return BERTModel(vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout, max_len, attention_bias)


@register_model
def bert_classifier(vocab_size: int = 10000, num_classes: int = 3, num_hiddens: int = 128,
                    ffn_num_hiddens: int = 256, num_heads: int = 2, num_layers: int = 2, dropout: float = 0.2,
                    max_len: int = 1000, attention_bias: bool = False) -> BERTClassifier:  # fmt: skip
    """BERT with a ``num_classes``-way head on ``<cls>`` (the course's SNLI fine-tuning: 3)."""
    return BERTClassifier(vocab_size, num_classes, num_hiddens, ffn_num_hiddens, num_heads, num_layers, dropout,
                          max_len, attention_bias)  # fmt: skip


# -- the course's pretrained files ---------------------------------------------------------------
#: what the course's files do not record: their heads (zh.d2l.ai 15.7 ``load_pretrained_model``)
COURSE_HEADS = {"bert.small": 4, "bert.base": 12}
#: ``d2l.torch.BERTModel`` (d2l 0.17.6, which wrote bert.small/bert.base) -> this module's names
_COURSE_KEYS = (
    (r"encoder\.token_embedding\.", "encoder.transformer.embedding."),
    (r"encoder\.blks\.(\d+)\.attention\.", r"encoder.transformer.blocks.\1.attention."),
    (r"encoder\.blks\.(\d+)\.(addnorm[12])\.", r"encoder.transformer.blocks.\1.\2."),
    (r"encoder\.blks\.(\d+)\.ffn\.dense1\.", r"encoder.transformer.blocks.\1.ffn.0."),
    (r"encoder\.blks\.(\d+)\.ffn\.dense2\.", r"encoder.transformer.blocks.\1.ffn.2."),
    (r"nsp\.output\.", "nsp."),
)


def from_course(state: dict[str, torch.Tensor], name: str, num_heads: int | None = None,
                ) -> tuple[dict[str, torch.Tensor], dict[str, int | bool]]:  # fmt: skip
    """A state dict of the course's ``BERTModel`` (``pretrained.params``) as ``BERTModel``'s,
    and the builder sizes it implies. ``num_heads`` (not recorded in the file) defaults to the
    course's for its files (``name`` ``bert.small*``: 4, ``bert.base*``: 12)."""
    if "encoder.token_embedding.weight" not in state:
        raise ConfigError(f"{name}: not the course's BERTModel weights (no encoder.token_embedding.weight; first "
                         f"keys {list(state)[:3]})")  # fmt: skip
    converted = {}
    for key, value in state.items():
        for pattern, replacement in _COURSE_KEYS:
            key = re.sub(f"^{pattern}", replacement, key)
        converted[key] = value
    heads = num_heads or next((h for n, h in COURSE_HEADS.items() if name.startswith(n)), None)
    if heads is None:
        raise ConfigError(f"{name}: the course's files do not record their heads; pass arch_kwargs num_heads")
    vocab_size, hidden = state["encoder.token_embedding.weight"].shape
    sizes = {
        "num_hiddens": hidden,
        "ffn_num_hiddens": state["encoder.blks.0.ffn.dense1.weight"].shape[0],
        "num_heads": heads,
        "num_layers": len({k.split(".")[2] for k in state if k.startswith("encoder.blks.")}),
        "max_len": state["encoder.pos_embedding"].shape[1],
        "attention_bias": "encoder.blks.0.attention.W_q.bias" in state,
    }
    return converted, {"vocab_size": vocab_size, **sizes}
