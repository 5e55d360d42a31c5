"""Recurrent encoder-decoders for translation (the course's lectures 62 and 65).

* ``seq2seq`` (Sutskever et al., 2014; Cho et al., 2014): a multi-layer GRU encodes the source;
  its final state starts the decoder's GRU, and the encoder's last-layer final state (the
  context) is concatenated to every decoder input.
* ``bahdanau`` (Bahdanau et al., 2015): the decoder attends over all encoder outputs at every
  step (additive attention, the decoder's last-layer state as the query) and feeds the attention's
  output beside the embedded token.

Two departures from the course's code, both so that a translation does not depend on what else is
in the batch or on whether it is decoded step by step: the encoder skips the padding (packed
sequences; the course's GRU runs over the pads, so a sentence's final state depends on the
batch's longest sentence), and the decoder's context stays the encoder's state at every step
(the Chinese book's decoder takes it from its own latest state at prediction time).

Both follow the zoo's seq2seq interface (see ``zoo.ops.decoding``): ``forward`` (teacher
forcing), ``init_state`` and ``decode_step``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from zoo.models.attention import AdditiveAttention
from zoo.models.registry import register_model
from zoo.ops.decoding import vocab_sizes

State = dict[str, Any]


class GRUEncoder(nn.Module):
    """Token ids ``(B, S)`` -> outputs ``(B, S, H)`` (zero past each valid length) and the final
    state of each layer ``(L, B, H)``."""

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size, num_hiddens, num_layers, dropout=dropout, batch_first=True)

    def forward(self, X: torch.Tensor, valid_len: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        E = self.embedding(X)  # (B, S, E)
        if valid_len is None:
            return self.rnn(E)
        packed = pack_padded_sequence(E, valid_len.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=X.shape[1])[0], state


class GRUSeq2Seq(nn.Module):
    """The GRU encoder-decoder; the decoder reads ``[embedding; context]`` at every step."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_size: int = 32, num_hiddens: int = 32,
                 num_layers: int = 2, dropout: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        self.encoder = GRUEncoder(src_vocab_size, embed_size, num_hiddens, num_layers, dropout)
        self.embedding = nn.Embedding(tgt_vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout=dropout, batch_first=True)
        self.dense = nn.Linear(num_hiddens, tgt_vocab_size)

    def init_state(self, src: torch.Tensor, src_valid_len: torch.Tensor | None = None) -> State:
        """``hidden`` ``(B, L, H)`` (batch first, as every decoding state) and ``context`` ``(B, H)``."""
        _, state = self.encoder(src, src_valid_len)  # (L, B, H)
        return {"hidden": state.transpose(0, 1), "context": state[-1]}

    def _decode(self, tgt: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        E = self.embedding(tgt)  # (B, T, E)
        context = state["context"][:, None].expand(-1, E.shape[1], -1)  # (B, T, H)
        out, hidden = self.rnn(torch.cat([E, context], -1), state["hidden"].transpose(0, 1).contiguous())
        return self.dense(out), {**state, "hidden": hidden.transpose(0, 1)}  # (B, T, V)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor | None = None,
                src_valid_len: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Teacher forcing: ``src`` ``(B, S)``, ``tgt_in`` ``(B, T)`` -> logits ``(B, T, V)``.
        ``tgt_in=None`` feeds ``src`` to the decoder (a copy task: the registry's shared test)."""
        return self._decode(src if tgt_in is None else tgt_in, self.init_state(src, src_valid_len))[0]

    def decode_step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        logits, state = self._decode(tokens[:, None], state)
        return logits[:, 0], state  # (B, V)


class BahdanauSeq2Seq(nn.Module):
    """The GRU encoder and a decoder with additive attention over the encoder's outputs."""

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_size: int = 32, num_hiddens: int = 32,
                 num_layers: int = 2, dropout: float = 0.0) -> None:  # fmt: skip
        super().__init__()
        self.encoder = GRUEncoder(src_vocab_size, embed_size, num_hiddens, num_layers, dropout)
        self.attention = AdditiveAttention(num_hiddens, num_hiddens, num_hiddens, dropout)
        self.embedding = nn.Embedding(tgt_vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout=dropout, batch_first=True)
        self.dense = nn.Linear(num_hiddens, tgt_vocab_size)

    def init_state(self, src: torch.Tensor, src_valid_len: torch.Tensor | None = None) -> State:
        outputs, state = self.encoder(src, src_valid_len)  # (B, S, H), (L, B, H)
        lens = torch.full_like(src[:, 0], src.shape[1]) if src_valid_len is None else src_valid_len
        return {"outputs": outputs, "hidden": state.transpose(0, 1), "valid_len": lens}

    def _step(self, E: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor, State]:
        """One step: embedded tokens ``(B, E)`` -> GRU output ``(B, H)``, attention ``(B, S)``."""
        query = state["hidden"][:, -1:]  # (B, 1, H): the last layer's state
        context = self.attention(query, state["outputs"], state["outputs"], state["valid_len"])  # (B, 1, H)
        x = torch.cat([context, E[:, None]], -1)  # (B, 1, H + E)
        out, hidden = self.rnn(x, state["hidden"].transpose(0, 1).contiguous())
        return out[:, 0], self.attention.attention_weights[:, 0], {**state, "hidden": hidden.transpose(0, 1)}

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor | None = None, src_valid_len: torch.Tensor | None = None,
                return_attention: bool = False):  # fmt: skip
        """Teacher forcing, one step at a time (each attends with the previous step's state):
        logits ``(B, T, V)`` and, with ``return_attention``, the weights ``(B, T, S)``."""
        state = self.init_state(src, src_valid_len)
        E = self.embedding(src if tgt_in is None else tgt_in)  # (B, T, E)
        outs, weights = [], []
        for t in range(E.shape[1]):
            out, w, state = self._step(E[:, t], state)
            outs.append(out)
            weights.append(w)
        logits = self.dense(torch.stack(outs, 1))  # (B, T, V)
        return (logits, torch.stack(weights, 1)) if return_attention else logits

    def decode_step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        out, _, state = self._step(self.embedding(tokens), state)
        return self.dense(out), state  # (B, V)


@register_model
def seq2seq(vocab_size: int | tuple[int, int] = 100, embed_size: int = 32, num_hiddens: int = 32,
            num_layers: int = 2, dropout: float = 0.1) -> GRUSeq2Seq:  # fmt: skip
    """The course's GRU encoder-decoder (lecture 62: embed 32, 32 hidden, 2 layers, dropout 0.1).
    ``vocab_size``: source and target vocabulary sizes (one number: both)."""
    return GRUSeq2Seq(*vocab_sizes(vocab_size), embed_size, num_hiddens, num_layers, dropout)


@register_model
def bahdanau(vocab_size: int | tuple[int, int] = 100, embed_size: int = 32, num_hiddens: int = 32,
             num_layers: int = 2, dropout: float = 0.1) -> BahdanauSeq2Seq:  # fmt: skip
    """The course's Bahdanau attention decoder (lecture 66: the same sizes as ``seq2seq``)."""
    return BahdanauSeq2Seq(*vocab_sizes(vocab_size), embed_size, num_hiddens, num_layers, dropout)
