"""Attention mechanisms (the course's lectures 64-67, book chapter 10).

* ``masked_softmax``: the course's softmax over the last axis that gives zero weight to the keys
  past each row's valid length (they are set to -1e6 first).
* ``AdditiveAttention`` (Bahdanau et al., 2015): ``w_v^T tanh(W_q q + W_k k)``.
* ``DotProductAttention`` (Vaswani et al., 2017): ``softmax(Q K^T / sqrt(d)) V``.
* ``MultiHeadAttention``: ``num_heads`` dot-product attentions over learned projections of the
  queries, keys and values, concatenated and projected (bias-free, as the course).
* ``PositionalEncoding``: the sinusoidal encoding, added from any start position.

The course's ``masked_softmax`` and ``DotProductAttention`` are kept as the tested reference;
``MultiHeadAttention`` trains on ``F.scaled_dot_product_attention`` (``fast=True``), which
tests/test_attention.py checks equal to them and to ``nn.MultiheadAttention``.

Valid lengths are ``None`` (every key), ``(B,)`` (per sequence) or ``(B, Q)`` (per query, the
course's way of writing a causal mask); masks are boolean, True where a query may attend.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from zoo.core.errors import ConfigError

KV = tuple[torch.Tensor, torch.Tensor]


def attention_mask(valid_lens: torch.Tensor | None, num_queries: int, num_keys: int) -> torch.Tensor | None:
    """Valid lengths ``(B,)`` or ``(B, Q)`` -> a boolean mask ``(B, 1, Q or 1, K)`` for
    ``(B, heads, Q, K)`` scores; ``None`` stays ``None``."""
    if valid_lens is None:
        return None
    keys = torch.arange(num_keys, device=valid_lens.device)
    if valid_lens.dim() == 1:
        return (keys < valid_lens[:, None])[:, None, None, :]  # (B, 1, 1, K)
    return (keys < valid_lens[:, :, None])[:, None]  # (B, 1, Q, K)


def masked_softmax(X: torch.Tensor, valid_lens: torch.Tensor | None) -> torch.Tensor:
    """The course's masked softmax over the last axis of ``X`` ``(B, Q, K)``."""
    if valid_lens is None:
        return F.softmax(X, dim=-1)
    B, Q, K = X.shape
    lens = valid_lens if valid_lens.dim() == 2 else valid_lens[:, None].expand(B, Q)  # (B, Q)
    keep = torch.arange(K, device=X.device) < lens[:, :, None]  # (B, Q, K)
    return F.softmax(X.masked_fill(~keep, -1e6), dim=-1)


class AdditiveAttention(nn.Module):
    """Additive attention: queries and keys of different sizes, scored through a hidden layer."""

    def __init__(self, key_size: int, query_size: int, num_hiddens: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.attention_weights: torch.Tensor | None = None

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        features = torch.tanh(self.W_q(queries)[:, :, None] + self.W_k(keys)[:, None])  # (B, Q, K, h)
        scores = self.w_v(features).squeeze(-1)  # (B, Q, K)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(self.attention_weights), values)  # (B, Q, d_v)


class DotProductAttention(nn.Module):
    """The course's scaled dot-product attention (the reference ``MultiHeadAttention`` is tested on)."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.attention_weights: torch.Tensor | None = None

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(queries.shape[-1])  # (B, Q, K)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return torch.bmm(self.dropout(self.attention_weights), values)  # (B, Q, d_v)


class MultiHeadAttention(nn.Module):
    """Multi-head attention over ``num_hiddens`` features split into ``num_heads`` heads.

    ``forward`` takes valid lengths (or ``causal=True``) as the course does; a decoder with a
    key/value cache calls ``project_kv`` once per new key and then ``attend``.

    Args:
        num_hiddens: model width (a multiple of ``num_heads``).
        num_heads: heads.
        dropout: on the attention weights.
        bias: biases in the projections (the course: none).
        fast: ``F.scaled_dot_product_attention``; ``False``: the course's ``DotProductAttention``.
    """

    def __init__(self, num_hiddens: int, num_heads: int, dropout: float = 0.0, bias: bool = False,
                 fast: bool = True) -> None:  # fmt: skip
        super().__init__()
        if num_hiddens % num_heads:
            raise ConfigError(f"num_hiddens ({num_hiddens}) must be a multiple of num_heads ({num_heads})")
        self.num_heads, self.dropout, self.fast = num_heads, dropout, fast
        self.W_q = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_k = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_v = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.reference = DotProductAttention(dropout)

    def _split(self, X: torch.Tensor) -> torch.Tensor:
        B, T, H = X.shape
        return X.reshape(B, T, self.num_heads, H // self.num_heads).transpose(1, 2)  # (B, heads, T, d)

    def project_kv(self, keys: torch.Tensor, values: torch.Tensor) -> KV:
        """Keys and values ``(B, K, H)`` -> per-head ``(B, heads, K, d)``, the form a cache keeps."""
        return self._split(self.W_k(keys)), self._split(self.W_v(values))

    def attend(self, queries: torch.Tensor, kv: KV, mask: torch.Tensor | None = None, causal: bool = False,
               need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
        """Queries ``(B, Q, H)`` over projected ``kv``; ``mask`` from ``attention_mask``.
        Returns ``(B, Q, H)`` and, with ``need_weights`` (or ``fast=False``), the weights
        ``(B, heads, Q, K)``."""
        q, (k, v) = self._split(self.W_q(queries)), kv
        B, heads, Q, d = q.shape
        fast = self.fast and not need_weights
        is_causal = causal and fast and mask is None and Q == k.shape[2]  # sdpa's own causal kernel
        if causal and not is_causal:  # query i sees keys 0..i (the keys end where the queries end)
            K = k.shape[2]
            seen = torch.arange(K, device=q.device) <= torch.arange(K - Q, K, device=q.device)[:, None]
            mask = seen if mask is None else mask & seen
        weights = None
        if fast:
            p = self.dropout if self.training else 0.0
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal)
        else:  # the course's attention on (B * heads) sequences; masks here are prefixes, so lengths
            lens = None if mask is None else mask.expand(B, 1, Q, k.shape[2]).sum(-1).squeeze(1)  # (B, Q)
            lens = None if lens is None else lens.repeat_interleave(heads, dim=0)
            out = self.reference(q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1), lens).reshape(B, heads, Q, d)
            weights = self.reference.attention_weights.reshape(B, heads, Q, -1)
        return self.W_o(out.transpose(1, 2).reshape(B, Q, heads * d)), weights  # (B, Q, H)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:  # fmt: skip
        mask = attention_mask(valid_lens, queries.shape[1], keys.shape[1])
        return self.attend(queries, self.project_kv(keys, values), mask, causal)[0]


class PositionalEncoding(nn.Module):
    """Adds ``P[pos, 2i] = sin(pos / 10000^(2i/H))``, ``P[pos, 2i+1] = cos(...)``, then dropout."""

    def __init__(self, num_hiddens: int, dropout: float = 0.0, max_len: int = 1000) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]
        angle = pos / torch.pow(10000, torch.arange(0, num_hiddens, 2, dtype=torch.float32) / num_hiddens)
        P = torch.zeros(max_len, num_hiddens)
        P[:, 0::2] = torch.sin(angle)
        P[:, 1::2] = torch.cos(angle[:, : num_hiddens // 2])
        self.register_buffer("P", P, persistent=False)

    def forward(self, X: torch.Tensor, start: int = 0) -> torch.Tensor:
        """``X`` ``(B, T, H)`` holds positions ``start .. start + T - 1``."""
        if start + X.shape[1] > len(self.P):
            raise ConfigError(f"positions up to {start + X.shape[1]} exceed max_len={len(self.P)}")
        return self.dropout(X + self.P[start : start + X.shape[1]].to(X.dtype))
