"""Training throughput (tokens per second) of the recurrent language models, in one run.

The scratch RNN's Python loop over time steps against PyTorch's fused ``nn.RNN``, ``nn.GRU``
and ``nn.LSTM``: one training step is forward, cross-entropy, backward, gradient clipping and
an SGD update on a batch of the course's shape (32 x 35 character tokens, 28 of them).

    python -m scripts.rnn_throughput [--hidden 256] [--steps 30] [--repeats 3] [--device cpu]

Every model gets the same hidden size, so the table compares implementations, not sizes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from scripts.options import add_dry_run, dry_run_done
from zoo.models.registry import create_model
from zoo.run.errors import run_command

MODELS = ("rnn_scratch", "rnn", "gru", "lstm")


def tokens_per_second(name: str, args: argparse.Namespace) -> float:
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = create_model(name, vocab_size=args.vocab, num_hiddens=args.hidden).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    X = torch.randint(args.vocab, (args.batch_size, args.num_steps + 1), device=device)
    inputs, targets = X[:, :-1], X[:, 1:]

    def step() -> None:
        logits, _ = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, args.vocab), targets.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(args.warmup):
        step()
    rates = []
    for _ in range(args.repeats):  # the median of several timings resists other work's bursts
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(args.steps * args.batch_size * args.num_steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--num_steps", type=int, default=35)
    p.add_argument("--vocab", type=int, default=28)
    p.add_argument("--steps", type=int, default=30, help="timed training steps per model")
    p.add_argument("--repeats", type=int, default=3, help="timings per model; the median is reported")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    add_dry_run(p)
    args = p.parse_args(argv)
    if args.dry_run:
        return dry_run_done(f"{', '.join(args.models)} on {args.device}")
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"batch {args.batch_size} x {args.num_steps}, hidden {args.hidden}, vocab {args.vocab}")
    results = {name: tokens_per_second(name, args) for name in args.models}
    base = results.get("rnn_scratch")
    print("\n| model | tokens/s | vs rnn_scratch |\n|---|---:|---:|")
    for name, tps in results.items():
        print(f"| {name} | {tps:,.0f} | {tps / base:.2f}x |" if base else f"| {name} | {tps:,.0f} | - |")
    return results


if __name__ == "__main__":
    run_command(main)
