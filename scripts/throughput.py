"""Training throughput (images per second) of the convolutional zoo, in one run.

Each architecture at its course input size (224 for AlexNet, VGG, NiN; 96 for GoogLeNet,
ResNet, DenseNet; one channel, as Fashion-MNIST), batch 64, SGD: the zoo's ``Classification``
task under a Lightning ``Trainer`` against a hand-written loop (forward, cross-entropy,
backward, step) on the same architecture and the same in-memory batches. A few steps after
warm-up each, measured ``--repeats`` times in alternating order (Lightning, loop, loop,
Lightning, ...), keeping each side's best: on a shared machine other work only ever slows a
measurement down, so the best is the least disturbed one.

    python -m scripts.throughput [--steps 4] [--warmup 2] [--models alexnet resnet18]
    python -m scripts.throughput --options   # ResNet-18: precision, channels_last, compile

``--options`` times the task's training options on one model instead (see
docs/training_options.md).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from datamodules.base import TensorDataset, ZooDataModule
from scripts.options import add_dry_run, dry_run_done
from zoo.models.registry import create_model
from zoo.run.errors import run_command
from zoo.tasks import Classification

# the course's experiments: model -> input size
MODELS = {
    "alexnet": 224,
    "vgg11_narrow": 224,
    "nin": 224,
    "googlenet": 96,
    "resnet18": 96,
    "densenet": 96,
}
# option set -> (task arguments, Trainer precision)
OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "fp32": ({}, "32-true"),
    "bf16-mixed": ({}, "bf16-mixed"),
    "channels_last": ({"channels_last": True}, "32-true"),
    "channels_last + bf16-mixed": ({"channels_last": True}, "bf16-mixed"),
    "compile": ({"compile": True}, "32-true"),
}


def _loader(size: int, args: argparse.Namespace):
    n = args.batch_size * (args.warmup + args.steps)
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(n, 1, size, size, generator=g), torch.randint(0, 10, (n,), generator=g))
    return ZooDataModule(batch_size=args.batch_size).loader(data)


class _Clock(L.Callback):
    """Wall time from the first step after warm-up to the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.end = time.perf_counter()


def lightning_rate(name: str, size: int, args, task_kw: dict | None = None, precision: str = "32-true") -> float:
    torch.manual_seed(0)
    task = Classification(arch=name, num_classes=10, in_channels=1, lr=0.01, **(task_kw or {}))
    clock = _Clock(args.warmup)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, precision=precision, callbacks=[clock], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(task, _loader(size, args))
    return args.steps * args.batch_size / (clock.end - clock.start)


def loop_rate(name: str, size: int, args) -> float:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_channels=1).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for i, (x, y) in enumerate(_loader(size, args)):
        if i == args.warmup:
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return args.steps * args.batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--steps", type=int, default=4, help="timed training steps per measurement")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="measurements per side; the best is kept")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--options", action="store_true", help="time the training options on --option_model")
    p.add_argument("--option_model", default="resnet18", choices=list(MODELS))
    add_dry_run(p)
    args = p.parse_args(argv)
    if args.dry_run:
        return dry_run_done(f"{len(args.models)} architectures")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"{args.warmup} warm-up + {args.steps} timed steps, best of {args.repeats}")  # fmt: skip
    results: dict[str, Any] = {}
    if args.options:
        size = MODELS[args.option_model]
        print(f"\n{args.option_model} at {size}x{size} under Lightning\n")
        print("| option | images/s | vs fp32 | wall s |\n|---|---:|---:|---:|")
        for label, (kw, precision) in OPTIONS.items():
            t0 = time.perf_counter()
            rate = max(lightning_rate(args.option_model, size, args, kw, precision) for _ in range(args.repeats))
            results[label] = rate
            wall = time.perf_counter() - t0  # with compilation, for compile
            print(f"| {label} | {rate:.1f} | {rate / results['fp32']:.2f}x | {wall:.0f} |", flush=True)
        return results
    print("\n| model | input | Lightning task (img/s) | hand loop (img/s) | Lightning / loop |")
    print("|---|---|---:|---:|---:|")
    for name in args.models:
        size = MODELS[name]
        pl, loop = 0.0, 0.0
        for i in range(args.repeats):
            for use_lightning in (True, False) if i % 2 == 0 else (False, True):
                if use_lightning:
                    pl = max(pl, lightning_rate(name, size, args))
                else:
                    loop = max(loop, loop_rate(name, size, args))
        results[name] = {"lightning": pl, "loop": loop}
        print(f"| {name} | {size}x{size} | {pl:.1f} | {loop:.1f} | {pl / loop:.2f} |", flush=True)
    return results


if __name__ == "__main__":
    run_command(main)
