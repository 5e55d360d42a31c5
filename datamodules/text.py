"""Text preprocessing shared by every text task: tokenizers and a vocabulary.

The course's lecture 52 ("text preprocessing", book section 8.2): split text into tokens
(characters or words), count them, and map each token to an index, most frequent first, with
``<unk>`` for tokens seen too rarely or never. Language models, machine translation and BERT
all build on these two pieces, so they hold no data-set-specific logic; a ``Vocab`` and a
``Tokenizer`` turn into plain dicts (``to_dict``) that are stored inside checkpoints.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from zoo.core.checkpoint import CheckpointError, load_checkpoint
from zoo.core.errors import ConfigError
from zoo.core.io import read_member

Level = Literal["char", "word"]
UNK = "<unk>"


def letters_only(text: str) -> str:
    """The course's Time Machine preprocessing: every run of non-letters becomes one space, and
    the text is lower-cased (``re.sub('[^A-Za-z]+', ' ', text).lower()``)."""
    return re.sub("[^A-Za-z]+", " ", text).lower()


def tokenize(lines: Iterable[str], level: Level = "word") -> list[list[str]]:
    """One token list per line: characters (``level='char'``) or whitespace-separated words."""
    if level == "char":
        return [list(line) for line in lines]
    if level == "word":
        return [line.split() for line in lines]
    raise ConfigError(f"tokenize: level must be 'char' or 'word', got {level!r}")


@dataclass(frozen=True)
class Tokenizer:
    """Text -> tokens, and back, with the settings a saved model needs to read new text.

    Args:
        level: ``char`` (every character a token) or ``word`` (split on whitespace).
        letters_only: apply the course's ``letters_only`` normalisation first.
        eos: at word level, a token appended to every line (PTB's ``<eos>``); ``None``: none.
    """

    level: Level = "char"
    letters_only: bool = False
    eos: str | None = None

    def __post_init__(self) -> None:
        if self.level not in ("char", "word"):
            raise ConfigError(f"Tokenizer: level must be 'char' or 'word', got {self.level!r}")

    def __call__(self, text: str) -> list[str]:
        if self.letters_only:
            text = letters_only(text)
        if self.level == "char":
            return list(text)
        if self.eos is None:
            return text.split()
        return [tok for line in text.splitlines() for tok in [*line.split(), self.eos]]

    def detokenize(self, tokens: Iterable[str]) -> str:
        return ("" if self.level == "char" else " ").join(tokens)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tokenizer:
        return cls(**d)


def _flatten(tokens: Iterable) -> Iterable[str]:
    for t in tokens:
        if isinstance(t, str):
            yield t
        else:
            yield from _flatten(t)


class Vocab:
    """Token <-> index. Index 0 is ``unk``, then the ``reserved`` tokens (``<pad>``, ``<bos>``,
    ...) in the given order, then every other token seen at least ``min_freq`` times, most
    frequent first (ties alphabetically, so a vocabulary does not depend on dict order).

    ``vocab["the"]`` and ``vocab[["a", "b"]]`` give indices (``unk``'s for unknown tokens),
    ``vocab.to_tokens(i)`` the reverse. ``tokens`` may be a flat or nested list of tokens.
    """

    def __init__(
        self,
        tokens: Iterable = (),
        min_freq: int = 0,
        reserved_tokens: Sequence[str] = (),
        unk: str = UNK,
    ) -> None:
        specials = [unk, *reserved_tokens]
        if len(set(specials)) != len(specials):
            raise ConfigError(f"Vocab: reserved_tokens {list(reserved_tokens)} repeat a token or the unk {unk!r}")
        counter = Counter(_flatten(tokens))
        self.token_freqs = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [t for t, f in self.token_freqs if f >= min_freq and t not in specials]
        self._build([*specials, *kept], unk)

    def _build(self, idx_to_token: list[str], unk: str) -> None:
        self.idx_to_token = idx_to_token
        self.token_to_idx = {t: i for i, t in enumerate(idx_to_token)}
        if len(self.token_to_idx) != len(idx_to_token):
            raise ConfigError("Vocab: idx_to_token repeats a token")
        self.unk_token = unk
        self.unk = self.token_to_idx[unk]

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __contains__(self, token: str) -> bool:
        return token in self.token_to_idx

    def __getitem__(self, tokens: str | Sequence) -> int | list:
        if isinstance(tokens, str):
            return self.token_to_idx.get(tokens, self.unk)
        return [self[t] for t in tokens]

    def to_tokens(self, indices: int | Sequence) -> str | list:
        if isinstance(indices, int) or (hasattr(indices, "ndim") and indices.ndim == 0):
            return self.idx_to_token[int(indices)]
        return [self.to_tokens(i) for i in indices]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (lists and strings only) that ``from_dict`` turns back into this vocab;
        small and safe to keep in a checkpoint or a JSON file."""
        return {"idx_to_token": list(self.idx_to_token), "unk": self.unk_token}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocab:
        try:
            idx_to_token, unk = list(d["idx_to_token"]), d["unk"]
        except (KeyError, TypeError) as e:
            raise ConfigError(f"Vocab.from_dict: expected keys 'idx_to_token' and 'unk', got {d!r:.200}") from e
        if unk not in idx_to_token:
            raise ConfigError(f"Vocab.from_dict: the unk token {unk!r} is not in idx_to_token")
        vocab = cls.__new__(cls)
        vocab.token_freqs = []
        vocab._build(idx_to_token, unk)
        return vocab

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.idx_to_token[:8])
        return f"Vocab({len(self)} tokens: {head}{', ...' if len(self) > 8 else ''})"


def read_bert_vocab(path: str | os.PathLike) -> Vocab:
    """The vocabulary of a pretrained BERT: a ``BERTPretrain`` checkpoint's, or the course's
    ``vocab.json`` (its ``idx_to_token``, ``<unk>`` first) in its zip or folder."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".zip":
        try:
            tokens = json.loads(read_member(path, "vocab.json"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:  # a damaged bundle: the bundle's own error
            raise CheckpointError(f"{path}: its vocab.json is not JSON ({e})") from None
        if not (isinstance(tokens, list) and tokens and tokens[0] == UNK):
            raise CheckpointError(f"{path}: its vocab.json is not the course's token list ({UNK} first)")
        return Vocab.from_dict({"idx_to_token": tokens, "unk": UNK})
    ckpt = load_checkpoint(path)
    if "vocab" not in ckpt:
        raise CheckpointError(f"{path}: holds no vocabulary (not a BERT pretraining checkpoint of "
                              "zoo.tasks.BERTPretrain, nor the course's bert.small/bert.base)")  # fmt: skip
    return Vocab.from_dict(ckpt["vocab"])


# -- the course's translation text (fra.txt), shared by its data module and the seq2seq task --
_PUNCTUATION = re.compile(r"[,.!?](?<=\S[,.!?])")  # a mark after a non-space (the mark first: faster)


def preprocess_nmt(text: str) -> str:
    """The course's ``preprocess_nmt``: no-break spaces to spaces, lower case, and a space before
    ``,.!?`` where none is."""
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    return _PUNCTUATION.sub(r" \g<0>", text)


def tokenize_nmt(sentence: str) -> list[str]:
    """Words of a preprocessed sentence (the course splits on single spaces; runs of spaces, which
    the real file has around U+202F, would give empty tokens there)."""
    return sentence.split()


def encode(
    sentences: Sequence[list[str]], vocab: Vocab, num_steps: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> ``(rows, valid_lens)``: each row is ``tokens + <eos>``, cut to ``num_steps``
    and padded with ``<pad>`` (``num_steps=None``: padded to the longest, never cut)."""
    width = num_steps if num_steps is not None else max(len(s) for s in sentences) + 1
    pad, eos = vocab["<pad>"], vocab["<eos>"]
    rows = torch.full((len(sentences), width), pad, dtype=torch.long)
    lens = torch.empty(len(sentences), dtype=torch.long)
    for i, tokens in enumerate(sentences):
        ids = [*vocab[tokens], eos][:width]
        rows[i, : len(ids)] = torch.tensor(ids)
        lens[i] = len(ids)
    return rows, lens
