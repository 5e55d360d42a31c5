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

import torch

from zoo.core.checkpoint import checkpoint_file, load_task
from zoo.core.options import number
from zoo.run.errors import run_command
from zoo.tasks.language_model import LanguageModel, generate


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
    task = load_task(checkpoint_file(args.ckpt_path, "--ckpt_path"), LanguageModel).to(args.device)
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
