"""The Transformer (Vaswani et al., 2017; the course's lecture 68, book section 10.7).

Post-norm blocks as the course writes them: multi-head attention and a position-wise FFN, each
followed by ``AddNorm`` (dropout, residual, layer norm); token embeddings scaled by
``sqrt(num_hiddens)`` plus sinusoidal positions. ``TransformerEncoder`` is built to be reused
(BERT runs its ``blocks`` on embeddings of its own through ``encode``).

The decoder decodes incrementally: each block keeps the projected keys and values of the tokens
generated so far (a key/value cache) and the projections of the encoder's output, so a step costs
one token's work. The course's decoder adds position 0's encoding to every generated token at
prediction time; here step ``t`` gets position ``t``, so incremental decoding gives the same
logits as the teacher-forced forward pass (tests/test_attention.py).

``Transformer`` follows the zoo's seq2seq interface (see ``zoo.ops.decoding``): ``forward``
(teacher forcing), ``init_state`` and ``decode_step``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from zoo.models.attention import KV, MultiHeadAttention, PositionalEncoding, attention_mask
from zoo.models.registry import register_model
from zoo.ops.decoding import vocab_sizes

State = dict[str, Any]


class PositionWiseFFN(nn.Sequential):
    """The same two-layer MLP at every position."""

    def __init__(self, num_hiddens: int, ffn_num_hiddens: int) -> None:
        super().__init__(nn.Linear(num_hiddens, ffn_num_hiddens), nn.ReLU(), nn.Linear(ffn_num_hiddens, num_hiddens))


class AddNorm(nn.Module):
    """``LayerNorm(X + dropout(Y))``: the residual connection and layer norm after a sublayer."""

    def __init__(self, num_hiddens: int, dropout: float) -> None:
        super().__init__()
        self.dropout, self.ln = nn.Dropout(dropout), nn.LayerNorm(num_hiddens)

    def forward(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return self.ln(X + self.dropout(Y))


class TransformerEncoderBlock(nn.Module):
    def __init__(self, num_hiddens: int, ffn_num_hiddens: int, num_heads: int, dropout: float,
                 bias: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.attention = MultiHeadAttention(num_hiddens, num_heads, dropout, bias)
        self.addnorm1 = AddNorm(num_hiddens, dropout)
        self.ffn = PositionWiseFFN(num_hiddens, ffn_num_hiddens)
        self.addnorm2 = AddNorm(num_hiddens, dropout)

    def forward(self, X: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        Y = self.addnorm1(X, self.attention.attend(X, self.attention.project_kv(X, X), mask)[0])
        return self.addnorm2(Y, self.ffn(Y))  # (B, T, H)


class TransformerEncoder(nn.Module):
    """Token ids ``(B, T)`` and valid lengths ``(B,)`` -> features ``(B, T, num_hiddens)``;
    ``bias``: biases in the attention projections (the course's BERT has them)."""

    def __init__(self, vocab_size: int, num_hiddens: int = 32, ffn_num_hiddens: int = 64, num_heads: int = 4,
                 num_layers: int = 2, dropout: float = 0.1, max_len: int = 1000,
                 bias: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.num_hiddens = num_hiddens
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.pos_encoding = PositionalEncoding(num_hiddens, dropout, max_len)
        self.blocks = nn.ModuleList(
            TransformerEncoderBlock(num_hiddens, ffn_num_hiddens, num_heads, dropout, bias) for _ in range(num_layers)
        )

    def encode(self, H: torch.Tensor, valid_lens: torch.Tensor | None = None) -> torch.Tensor:
        """The blocks alone, on embeddings ``H`` ``(B, T, num_hiddens)`` (positions included)."""
        mask = attention_mask(valid_lens, H.shape[1], H.shape[1])
        for block in self.blocks:
            H = block(H, mask)
        return H

    def forward(self, X: torch.Tensor, valid_lens: torch.Tensor | None = None) -> torch.Tensor:
        H = self.pos_encoding(self.embedding(X) * math.sqrt(self.num_hiddens))  # (B, T, H)
        return self.encode(H, valid_lens)


class TransformerDecoderBlock(nn.Module):
    """Causal self-attention, attention over the encoder's output, FFN; each with AddNorm."""

    def __init__(self, num_hiddens: int, ffn_num_hiddens: int, num_heads: int, dropout: float,
                 bias: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.self_attention = MultiHeadAttention(num_hiddens, num_heads, dropout, bias)
        self.addnorm1 = AddNorm(num_hiddens, dropout)
        self.cross_attention = MultiHeadAttention(num_hiddens, num_heads, dropout, bias)
        self.addnorm2 = AddNorm(num_hiddens, dropout)
        self.ffn = PositionWiseFFN(num_hiddens, ffn_num_hiddens)
        self.addnorm3 = AddNorm(num_hiddens, dropout)

    def forward(self, X: torch.Tensor, memory_kv: KV, memory_mask: torch.Tensor | None, cache: KV | None = None,
                need_weights: bool = False) -> tuple[torch.Tensor, KV, torch.Tensor | None]:  # fmt: skip
        """``X`` ``(B, T, H)``: new positions after the ``cache``'s (``None``: the first ones).
        Returns the output, the cache with the new positions, and the cross-attention weights."""
        kv = self.self_attention.project_kv(X, X)
        if cache is not None:
            kv = (torch.cat([cache[0], kv[0]], 2), torch.cat([cache[1], kv[1]], 2))  # (B, heads, t + T, d)
        Y = self.addnorm1(X, self.self_attention.attend(X, kv, causal=True)[0])
        Z, weights = self.cross_attention.attend(Y, memory_kv, memory_mask, need_weights=need_weights)
        Z = self.addnorm2(Y, Z)
        return self.addnorm3(Z, self.ffn(Z)), kv, weights


class TransformerDecoder(nn.Module):
    def __init__(self, vocab_size: int, num_hiddens: int = 32, ffn_num_hiddens: int = 64, num_heads: int = 4,
                 num_layers: int = 2, dropout: float = 0.1, max_len: int = 1000) -> None:  # fmt: skip
        super().__init__()
        self.num_hiddens = num_hiddens
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.pos_encoding = PositionalEncoding(num_hiddens, dropout, max_len)
        self.blocks = nn.ModuleList(
            TransformerDecoderBlock(num_hiddens, ffn_num_hiddens, num_heads, dropout) for _ in range(num_layers)
        )
        self.dense = nn.Linear(num_hiddens, vocab_size)

    def memory_kv(self, memory: torch.Tensor) -> list[KV]:
        """Each block's projections of the encoder's output ``(B, S, H)``, computed once."""
        return [b.cross_attention.project_kv(memory, memory) for b in self.blocks]

    def forward(self, X: torch.Tensor, memory_kv: list[KV], memory_mask: torch.Tensor | None, start: int = 0,
                caches: list[KV] | None = None, need_weights: bool = False):  # fmt: skip
        """Tokens ``X`` ``(B, T)`` at positions ``start..`` -> logits ``(B, T, V)``, the blocks'
        caches and the last block's cross-attention weights ``(B, heads, T, S)``."""
        H = self.pos_encoding(self.embedding(X) * math.sqrt(self.num_hiddens), start)  # (B, T, H)
        new_caches, weights = [], None
        for i, block in enumerate(self.blocks):
            H, kv, weights = block(H, memory_kv[i], memory_mask, None if caches is None else caches[i], need_weights)
            new_caches.append(kv)
        return self.dense(H), new_caches, weights


class Transformer(nn.Module):
    """The course's Transformer for translation: encoder and decoder of the same width."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, **kwargs: Any) -> None:
        super().__init__()
        self.encoder = TransformerEncoder(src_vocab_size, **kwargs)
        self.decoder = TransformerDecoder(tgt_vocab_size, **kwargs)

    def _memory(self, src: torch.Tensor, src_valid_len: torch.Tensor | None) -> tuple[list[KV], torch.Tensor | None]:
        memory = self.encoder(src, src_valid_len)  # (B, S, H)
        return self.decoder.memory_kv(memory), attention_mask(src_valid_len, 1, src.shape[1])

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor | None = None, src_valid_len: torch.Tensor | None = None,
                return_attention: bool = False):  # fmt: skip
        """Teacher forcing: ``src`` ``(B, S)`` and ``tgt_in`` ``(B, T)`` (``<bos>`` then the target
        shifted right) -> logits ``(B, T, V)``; with ``return_attention`` also the last block's
        attention over the source, averaged over heads ``(B, T, S)``. ``tgt_in=None`` feeds
        ``src`` to the decoder (a copy task: the registry's shared forward test)."""
        memory_kv, mask = self._memory(src, src_valid_len)
        logits, _, weights = self.decoder(src if tgt_in is None else tgt_in, memory_kv, mask,
                                          need_weights=return_attention)  # fmt: skip
        return (logits, weights.mean(1)) if return_attention else logits

    def init_state(self, src: torch.Tensor, src_valid_len: torch.Tensor | None = None) -> State:
        """The decoding state: every tensor has the batch first (beam search reorders them)."""
        memory_kv, mask = self._memory(src, src_valid_len)
        empty = memory_kv[0][0][:, :, :0]  # (B, heads, 0, d)
        return {"memory_kv": memory_kv, "mask": mask, "cache": [(empty, empty)] * len(memory_kv), "step": 0}

    def decode_step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One token per sequence ``(B,)`` -> next-token logits ``(B, V)`` and the new state."""
        logits, caches, _ = self.decoder(tokens[:, None], state["memory_kv"], state["mask"], state["step"],
                                         state["cache"])  # fmt: skip
        return logits[:, 0], {**state, "cache": caches, "step": state["step"] + 1}


@register_model
def transformer(vocab_size: int | tuple[int, int] = 100, num_hiddens: int = 32, ffn_num_hiddens: int = 64,
                num_heads: int = 4, num_layers: int = 2, dropout: float = 0.1,
                max_len: int = 1000) -> Transformer:  # fmt: skip
    """The course's Transformer (lecture 68: 32 wide, FFN 64, 4 heads, 2 blocks, dropout 0.1).
    ``vocab_size``: source and target vocabulary sizes (one number: both)."""
    src, tgt = vocab_sizes(vocab_size)
    return Transformer(src, tgt, num_hiddens=num_hiddens, ffn_num_hiddens=ffn_num_hiddens, num_heads=num_heads,
                       num_layers=num_layers, dropout=dropout, max_len=max_len)  # fmt: skip
