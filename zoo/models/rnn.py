"""Recurrent language models (the course's lectures 54-59, book chapters 8-9).

Every model maps token indices ``X`` of shape ``(B, T)`` and a hidden state (``None``: zeros)
to next-token logits ``(B, T, vocab_size)`` and the new state, so a task can carry the state
from one batch to the next. Inputs are one-hot vectors, as in the course (a one-hot row times
a weight matrix is a row lookup: an ``nn.Embedding`` would give the same numbers).

* ``rnn_scratch``: the RNN from its own cell equations (Elman, 1990; lecture 55),
  ``H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h)``, ``O_t = H_t W_hq + b_q``.
* ``rnn``, ``gru`` (Cho et al., 2014; lecture 56), ``lstm`` (Hochreiter and Schmidhuber, 1997;
  lecture 57) on PyTorch's fused ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``; ``deep_*`` stack
  ``num_layers`` of them (lecture 58) and ``bi*`` run a second layer backwards (lecture 59).

A bidirectional network cannot be a language model: its backward half reads ``x_{t+1}, ...``,
the very tokens it is asked to predict, so in training it copies the answer (near-perfect
perplexity) and at generation time, when the future is not yet written, it has nothing to read.
It is for tasks that see the whole sequence at once (tagging, encoders such as BERT's).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from zoo.core.errors import ConfigError
from zoo.models.registry import register_model

State = torch.Tensor | tuple[torch.Tensor, ...]


def detach_state(state: State | None) -> State | None:
    """Cut the graph behind a carried hidden state (truncated backpropagation through time)."""
    if state is None or isinstance(state, torch.Tensor):
        return None if state is None else state.detach()
    return tuple(s.detach() for s in state)


class RNNScratch(nn.Module):
    """The course's RNN language model written from its equations, one time step at a time.

    Weights are drawn from N(0, 0.01^2) and biases start at zero, as in the course.
    """

    bidirectional = False

    def __init__(self, vocab_size: int, num_hiddens: int = 512, sigma: float = 0.01) -> None:
        super().__init__()
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.W_xh = nn.Parameter(torch.randn(vocab_size, num_hiddens) * sigma)
        self.W_hh = nn.Parameter(torch.randn(num_hiddens, num_hiddens) * sigma)
        self.b_h = nn.Parameter(torch.zeros(num_hiddens))
        self.W_hq = nn.Parameter(torch.randn(num_hiddens, vocab_size) * sigma)
        self.b_q = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, X: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        B, T = X.shape
        H = torch.zeros(B, self.num_hiddens, device=X.device) if state is None else state  # (B, h)
        # X_t W_xh does not depend on H, so it is computed for all steps in one product
        XW = F.one_hot(X, self.vocab_size).to(self.W_xh.dtype) @ self.W_xh  # (B, T, h)
        outputs = []
        for t in range(T):
            H = torch.tanh(XW[:, t] + H @ self.W_hh + self.b_h)  # (B, h)
            outputs.append(H)
        logits = torch.stack(outputs, 1) @ self.W_hq + self.b_q  # (B, T, vocab)
        return logits, H


class RecurrentLM(nn.Module):
    """One-hot tokens -> ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` -> a linear layer to logits.

    Args:
        vocab_size: number of tokens (linked from the data module).
        num_hiddens: hidden units per layer and direction (course: 256).
        cell: ``rnn`` (tanh), ``gru`` or ``lstm``.
        num_layers: stacked recurrent layers (deep RNN).
        bidirectional: add a backward layer (see the module docstring: not a language model).
        dropout: dropout between stacked layers.
        embed_size: learn an ``nn.Embedding`` of this size instead of one-hot inputs (for word
            vocabularies such as PTB's 10,000, where one-hot rows are wide and mostly zeros).
    """

    _CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}

    def __init__(
        self,
        vocab_size: int,
        num_hiddens: int = 256,
        cell: Literal["rnn", "gru", "lstm"] = "rnn",
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        embed_size: int | None = None,
    ) -> None:
        super().__init__()
        if cell not in self._CELLS:
            raise ConfigError(f"cell must be one of {sorted(self._CELLS)}, got {cell!r}")
        self.vocab_size, self.bidirectional = vocab_size, bidirectional
        self.embedding = nn.Embedding(vocab_size, embed_size) if embed_size else None
        self.rnn = self._CELLS[cell](embed_size or vocab_size, num_hiddens, num_layers=num_layers, batch_first=True,
                                     bidirectional=bidirectional, dropout=dropout)  # fmt: skip
        self.head = nn.Linear(num_hiddens * (2 if bidirectional else 1), vocab_size)

    def forward(self, X: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if self.embedding is not None:
            inputs = self.embedding(X)  # (B, T, embed)
        else:
            inputs = F.one_hot(X, self.vocab_size).to(self.head.weight.dtype)  # (B, T, vocab)
        out, state = self.rnn(inputs, state)  # (B, T, dirs * h); state (layers * dirs, B, h)
        return self.head(out), state  # (B, T, vocab)


@register_model
def rnn_scratch(vocab_size: int = 28, num_hiddens: int = 512) -> RNNScratch:
    """The course's RNN from scratch (lecture 55: 512 hidden units on The Time Machine)."""
    return RNNScratch(vocab_size, num_hiddens)


@register_model
def rnn(vocab_size: int = 28, num_hiddens: int = 256, num_layers: int = 1, **kwargs) -> RecurrentLM:
    """The concise RNN on ``nn.RNN`` (lecture 55). ``kwargs``: ``dropout``, ``embed_size``."""
    return RecurrentLM(vocab_size, num_hiddens, "rnn", num_layers, **kwargs)


@register_model
def gru(vocab_size: int = 28, num_hiddens: int = 256, num_layers: int = 1, **kwargs) -> RecurrentLM:
    """Gated recurrent units (lecture 56). ``kwargs``: ``dropout``, ``embed_size``."""
    return RecurrentLM(vocab_size, num_hiddens, "gru", num_layers, **kwargs)


@register_model
def lstm(vocab_size: int = 28, num_hiddens: int = 256, num_layers: int = 1, **kwargs) -> RecurrentLM:
    """Long short-term memory (lecture 57). ``kwargs``: ``dropout``, ``embed_size``."""
    return RecurrentLM(vocab_size, num_hiddens, "lstm", num_layers, **kwargs)


@register_model
def deep_gru(vocab_size: int = 28, num_hiddens: int = 256, num_layers: int = 2, **kwargs) -> RecurrentLM:
    """A deep GRU (lecture 58): ``num_layers`` stacked layers."""
    return RecurrentLM(vocab_size, num_hiddens, "gru", num_layers, **kwargs)


@register_model
def deep_lstm(vocab_size: int = 28, num_hiddens: int = 256, num_layers: int = 2, **kwargs) -> RecurrentLM:
    """A deep LSTM (lecture 58: two layers of 256 on The Time Machine)."""
    return RecurrentLM(vocab_size, num_hiddens, "lstm", num_layers, **kwargs)


@register_model
def bigru(vocab_size: int = 28, num_hiddens: int = 256, num_layers: int = 1, **kwargs) -> RecurrentLM:
    """A bidirectional GRU (lecture 59). Not a language model: see the module docstring."""
    return RecurrentLM(vocab_size, num_hiddens, "gru", num_layers, bidirectional=True, **kwargs)


@register_model
def bilstm(vocab_size: int = 28, num_hiddens: int = 256, num_layers: int = 2, **kwargs) -> RecurrentLM:
    """A bidirectional LSTM (lecture 59: two layers of 256, trained as a language model to show
    that it fails). Not a language model: see the module docstring."""
    return RecurrentLM(vocab_size, num_hiddens, "lstm", num_layers, bidirectional=True, **kwargs)
