"""Images per second of an exported classifier (ONNX Runtime, TorchScript) against the PyTorch
checkpoint it came from, at one batch size, on this machine's CPU (or ``--device cuda`` for
PyTorch and TorchScript). Exports with ``zoo export`` into a temporary folder, checks that the
outputs agree (largest difference printed), then times each runtime: a warm-up, then
``--repeats`` timings of ``--seconds`` each, median reported. Time it on an idle machine.

    python -m scripts.export_bench --ckpt_path runs/cifar10_cpu/version_0/checkpoints/last.ckpt \\
        --batch_size 64 [--threads 1]   # --threads 1: one core for every runtime
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from scripts.options import add_dry_run, dry_run_done
from zoo.core.checkpoint import load_task
from zoo.run.errors import run_command
from zoo.run.export import example_input, export, quiet_torchscript_deprecation
from zoo.tasks.classification import Classification


def images_per_second(run: Callable[[], object], batch: int, seconds: float, repeats: int) -> float:
    """Median over ``repeats`` of batches run in ``seconds`` (after one second of warm-up)."""
    end = time.perf_counter() + 1.0
    while time.perf_counter() < end:
        run()
    rates = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            run()
            n += 1
        rates.append(n * batch / elapsed)
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt_path", required=True)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--seconds", type=float, default=3.0, help="length of one timing")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="threads for every runtime (0: each one's default)")
    p.add_argument("--formats", nargs="+", default=["onnx", "torchscript"], choices=["onnx", "torchscript"])
    p.add_argument("--device", default="cpu", help="for PyTorch and TorchScript (ONNX Runtime runs on the CPU)")
    p.add_argument("--json", help="also write the results here")
    add_dry_run(p)
    args = p.parse_args(argv)
    if args.dry_run:
        load_task(args.ckpt_path, Classification)
        return dry_run_done(f"{args.ckpt_path}, batch {args.batch_size}")
    if args.threads:
        torch.set_num_threads(args.threads)
    task = load_task(args.ckpt_path, Classification)
    model = task.model.to(args.device).eval()
    x = example_input(task.preprocessing, args.batch_size).to(args.device)
    results: dict[str, float] = {}
    with torch.inference_mode():
        results["pytorch"] = images_per_second(lambda: model(x), args.batch_size, args.seconds, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats:
            path, diff = export(args.ckpt_path, fmt, Path(tmp) / f"model.{fmt}")
            if fmt == "onnx":
                import onnxruntime as ort

                options = ort.SessionOptions()
                if args.threads:
                    options.intra_op_num_threads = args.threads
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                feed = {"images": x.cpu().numpy()}

                def run_onnx(session=session, feed=feed) -> object:
                    return session.run(["logits"], feed)

                results["onnx"] = images_per_second(run_onnx, args.batch_size, args.seconds, args.repeats)
            else:
                with quiet_torchscript_deprecation():
                    scripted = torch.jit.load(str(path), map_location=args.device)
                with torch.inference_mode():
                    results["torchscript"] = images_per_second(lambda m=scripted: m(x), args.batch_size, args.seconds,
                                                               args.repeats)  # fmt: skip
            print(f"{fmt}: largest difference from the checkpoint's logits {diff:.2e}")
    print(f"{task.hparams.arch}, batch {args.batch_size}, input {tuple(x.shape[1:])}, threads "
          f"{args.threads or 'default'}, {args.device}:")  # fmt: skip
    for name, rate in results.items():
        print(f"  {name:12s} {rate:10.1f} images/s  ({rate / results['pytorch']:.2f}x PyTorch)")
    if args.json:
        Path(args.json).write_text(json.dumps({"batch_size": args.batch_size, "images_per_second": results}, indent=1))
    return results


if __name__ == "__main__":
    run_command(main)
