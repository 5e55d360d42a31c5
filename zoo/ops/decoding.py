"""Decoding a sequence-to-sequence model: greedy and batched beam search (the course's lecture 63).

Every seq2seq model of the zoo (``seq2seq``, ``bahdanau``, ``transformer``) offers one interface,
``Seq2SeqModel``: ``init_state(src, src_valid_len)`` encodes a batch of sources into a decoding
state, and ``decode_step(tokens, state)`` turns the latest token of each sequence into the next
token's logits and the new state. A state is a dict (or list, tuple) of tensors with the batch on
their first axis, and of plain values, so beam search can copy and reorder it without knowing the
model (``map_state``).

Beam search keeps ``beam_size`` live hypotheses per source; a hypothesis that emits ``<eos>``
is finished and scored, as in the course, by ``log P(y) / L ** length_penalty`` (``L``: its
length, ``<eos>`` included). A source is done once ``beam_size`` hypotheses have finished; at
``max_len`` its live hypotheses compete too. With ``beam_size=1`` it is greedy search.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from zoo.core.errors import ConfigError


class Seq2SeqModel(Protocol):
    def init_state(self, src: torch.Tensor, src_valid_len: torch.Tensor | None = None) -> Any: ...

    def decode_step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]: ...


def vocab_sizes(vocab_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """A model builder's ``vocab_size``: ``(source, target)``, or one number for both."""
    if isinstance(vocab_size, int):
        return vocab_size, vocab_size
    src, tgt = vocab_size
    return int(src), int(tgt)


def map_state(state: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``fn`` applied to every tensor of a (nested) decoding state; other values are kept."""
    if isinstance(state, torch.Tensor):
        return fn(state)
    if isinstance(state, dict):
        return {k: map_state(v, fn) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(map_state(v, fn) for v in state)
    return state


def _cut(row: list[int], eos: int) -> list[int]:
    return row[: row.index(eos)] if eos in row else row


@torch.no_grad()
def greedy_search(model: Seq2SeqModel, src: torch.Tensor, src_valid_len: torch.Tensor | None, bos: int, eos: int,
                  max_len: int) -> list[list[int]]:  # fmt: skip
    """The most likely next token at every step, up to ``<eos>`` (not returned) or ``max_len``
    tokens; one token list per source."""
    state = model.init_state(src, src_valid_len)
    tokens = torch.full((src.shape[0],), bos, dtype=torch.long, device=src.device)
    done = torch.zeros_like(tokens, dtype=torch.bool)
    out = []
    for _ in range(max_len):
        logits, state = model.decode_step(tokens, state)  # (B, V)
        tokens = logits.argmax(-1)
        out.append(tokens)
        done |= tokens == eos
        if bool(done.all()):
            break
    rows = torch.stack(out, 1).tolist() if out else [[] for _ in range(src.shape[0])]
    return [_cut(row, eos) for row in rows]


@torch.no_grad()
def beam_search(model: Seq2SeqModel, src: torch.Tensor, src_valid_len: torch.Tensor | None, bos: int, eos: int,
                max_len: int, beam_size: int = 4, length_penalty: float = 0.75) -> list[list[int]]:  # fmt: skip
    """The best-scoring hypothesis per source (without ``<eos>``), searched ``beam_size`` wide
    for every source of the batch at once."""
    if beam_size < 1:
        raise ConfigError(f"beam_size must be at least 1, got {beam_size}")
    B, k, device = src.shape[0], beam_size, src.device
    state = map_state(model.init_state(src, src_valid_len), lambda t: t.repeat_interleave(k, 0))  # (B * k, ...)
    tokens = torch.full((B * k,), bos, dtype=torch.long, device=device)
    scores = torch.full((B, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis at the start, not k copies of it
    history = torch.empty(B, k, 0, dtype=torch.long, device=device)
    finished = torch.zeros(B, dtype=torch.long)
    best_score = [float("-inf")] * B
    best: list[list[int]] = [[] for _ in range(B)]
    rank = torch.arange(2 * k, device=device)
    for t in range(max_len):
        logits, state = model.decode_step(tokens, state)  # (B * k, V)
        logp = F.log_softmax(logits.float(), -1).view(B, k, -1)
        V = logp.shape[-1]
        top, idx = (scores[:, :, None] + logp).view(B, k * V).topk(min(2 * k, k * V), dim=1)  # (B, 2k)
        beam, tok = idx // V, idx % V
        is_eos = tok == eos
        # an <eos> among the k best candidates finishes a hypothesis (at most k of the 2k are <eos>)
        done = finished >= k
        new = is_eos & (rank[: top.shape[1]] < k) & torch.isfinite(top) & ~done.to(device)[:, None]
        for b, j in new.nonzero().tolist():
            finished[b] += 1
            score = float(top[b, j]) / (t + 1) ** length_penalty
            if score > best_score[b]:
                best_score[b], best[b] = score, history[b, beam[b, j]].tolist()
        # the k best candidates that go on (a stable sort keeps the rank order among non-<eos>)
        keep = torch.argsort(is_eos.int(), dim=1, stable=True)[:, :k]  # (B, k)
        scores, beam, tok = top.gather(1, keep), beam.gather(1, keep), tok.gather(1, keep)
        history = torch.cat([history.gather(1, beam[:, :, None].expand(-1, -1, t)), tok[:, :, None]], 2)
        rows = (torch.arange(B, device=device)[:, None] * k + beam).view(-1)
        state = map_state(state, lambda s, rows=rows: s.index_select(0, rows))
        tokens = tok.reshape(-1)
        if bool((finished >= k).all()):
            break
    length = history.shape[2]
    for b in range(B):  # sources still open at max_len: their live hypotheses compete
        if finished[b] < k and length:
            j = int(scores[b].argmax())
            score = float(scores[b, j]) / length**length_penalty
            if score > best_score[b]:
                best_score[b], best[b] = score, history[b, j].tolist()
    return best
