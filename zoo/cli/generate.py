"""``python -m zoo generate``: continue a prefix with a trained language model.

The course's ``predict_ch8`` (lecture 55): feed the prefix through the network to warm up its
hidden state, then append one token at a time, each fed back as the next input. ``temperature``
0 takes the most likely token (greedy); above 0 it samples from ``softmax(logits / T)``
(below 1 sharper, above 1 flatter).

    python -m zoo generate --ckpt_path runs/lstm_time_machine/version_0/checkpoints/last.ckpt \\
        --prefix "time traveller" --num_tokens 50 [--temperature 0.8 --seed 0]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch

from datamodules.text import Tokenizer, Vocab
from zoo.core.checkpoint import CheckpointError, checkpoint_file, load_task
from zoo.core.errors import ConfigError
from zoo.core.options import number
from zoo.run.errors import run_command
from zoo.tasks.language_model import LanguageModel


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    vocab: Vocab,
    tokenizer: Tokenizer,
    prefix: str,
    num_tokens: int,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> str:
    """``prefix`` followed by ``num_tokens`` generated tokens, as text."""
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0 (0: greedy), got {temperature}")
    if num_tokens < 0:
        raise ConfigError(f"num_tokens must be >= 0, got {num_tokens}")
    tokens = tokenizer(prefix)
    if not tokens:
        raise ConfigError(f"the prefix {prefix!r} has no tokens after {tokenizer} normalisation")
    unknown = sorted({t for t in tokens if t not in vocab})
    if len(unknown) == len(set(tokens)):  # the model would start from <unk> alone
        raise ConfigError(f"the prefix {prefix!r} holds no token of the model's vocabulary (unknown: "
                         f"{', '.join(map(repr, unknown))}; known: {_sample(vocab)})")  # fmt: skip
    if unknown:
        warnings.warn(f"prefix tokens outside the vocabulary, read as {vocab.unk_token}: "
                      f"{', '.join(map(repr, unknown))}", stacklevel=2)  # fmt: skip
    device = next(model.parameters()).device
    model.eval()
    indices = vocab[tokens]
    logits, state = model(torch.tensor([indices], device=device))  # warm-up on the whole prefix
    out: list[int] = []
    for _ in range(num_tokens):
        last = logits[0, -1]  # (vocab,)
        if temperature == 0:
            nxt = int(last.argmax())
        else:
            probs = torch.softmax(last.float() / temperature, -1).cpu()
            nxt = int(torch.multinomial(probs, 1, generator=generator))
        out.append(nxt)
        logits, state = model(torch.tensor([[nxt]], device=device), state)
    return tokenizer.detokenize([*tokens, *vocab.to_tokens(out)])


def _sample(vocab: Vocab, n: int = 12) -> str:
    shown = ", ".join(repr(t) for t in vocab.idx_to_token[:n])
    return f"{shown}, ... ({len(vocab)} tokens)" if len(vocab) > n else shown


def load(ckpt_path: str | Path, device: str = "cpu") -> LanguageModel:
    """A ``LanguageModel`` with the vocabulary and tokenizer its checkpoint was trained with."""
    checkpoint_file(ckpt_path, "--ckpt_path")
    task = load_task(ckpt_path, LanguageModel).to(device)
    if task.vocab is None or task.tokenizer is None:
        raise CheckpointError(f"{ckpt_path} holds no vocabulary/tokenizer: was it trained by "
                              "zoo.tasks.LanguageModel on a datamodules.language_model data module?")  # fmt: skip
    return task


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description="Generate text with a trained language model.")
    p.add_argument("--ckpt_path", required=True)
    p.add_argument("--prefix", default="time traveller")
    p.add_argument("--num_tokens", type=number(int, 1, 100_000), default=50, help="tokens to generate (1-100000)")
    p.add_argument("--temperature", type=number(float, 0, 100), default=0.0, help="0: greedy (default); > 0: sampling")
    p.add_argument("--seed", type=number(int, 0, 2**63 - 1), default=0, help="seed of the sampling")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dry_run", action="store_true", help="load and check the inputs, then stop")
    args = p.parse_args(argv)
    task = load(args.ckpt_path, args.device)
    if args.dry_run:
        return print(f"dry run: {args.ckpt_path} holds a language model of {len(task.vocab)} tokens")
    gen = torch.Generator().manual_seed(args.seed)
    text = generate(task.model, task.vocab, task.tokenizer, args.prefix, args.num_tokens, args.temperature, gen)
    print(text)
    return text


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo generate``)."""
    run_command(lambda: main(argv))


if __name__ == "__main__":
    run()
