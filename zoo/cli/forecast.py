"""``python -m zoo forecast``: plot a sequence model's predictions against the noisy sine.

The course's lecture 51: a model trained to predict one step ahead from ``tau`` past values is
good at that, but predicting ``k`` steps ahead means feeding it its own predictions for the
last ``k - 1`` values, and the errors pile up until the forecast flattens into a constant.

    python -m zoo forecast --ckpt_path runs/sine_mlp/version_0/checkpoints/last.ckpt \\
        --out runs/forecast/sine.png [--steps 1 4 16 64]

Top panel: data, 1-step-ahead predictions, and a forecast that uses only the first
``num_train + tau`` observations (everything after is the model's own output). Bottom panel:
``k``-step-ahead predictions for each ``k`` in ``--steps``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from datamodules.sine import NoisySine
from zoo.core.checkpoint import checkpoint_file, load_datamodule, load_task
from zoo.core.errors import ConfigError
from zoo.core.io import save_figure, subplots
from zoo.core.options import number
from zoo.run.errors import run_command
from zoo.tasks.regression import Regression


@torch.no_grad()
def k_step_ahead(model: nn.Module, x: torch.Tensor, tau: int, max_k: int) -> torch.Tensor:
    """``(N, max_k)`` with ``N = len(x) - tau - max_k + 1``: column ``k - 1``, row ``i`` predicts
    ``x[i + tau + k - 1]`` from the observations ``x[i : i + tau]`` and the model's own
    predictions of the ``k - 1`` values in between (the course's ``features`` matrix)."""
    n = len(x) - tau - max_k + 1
    if n < 1:
        raise ConfigError(f"a series of {len(x)} values is too short for tau={tau} and k={max_k}")
    cols = [x[i : i + n] for i in range(tau)]
    for _ in range(max_k):
        cols.append(model(torch.stack(cols[-tau:], 1)).reshape(n))
    return torch.stack(cols[tau:], 1)


@torch.no_grad()
def free_run(model: nn.Module, x: torch.Tensor, tau: int, start: int) -> torch.Tensor:
    """Observations up to ``start``, then each value predicted from the previous ``tau`` values,
    whatever they are: after ``start + tau`` the model only reads its own predictions."""
    out = x.clone()
    for t in range(start, len(x)):
        out[t] = model(out[t - tau : t].unsqueeze(0)).reshape(())
    return out


def plot(model: nn.Module, data: NoisySine, path: str | Path, steps: Sequence[int] = (1, 4, 16, 64)) -> Path:
    model.eval()
    time, x = data.series()
    tau, start = data.tau, data.num_train + data.tau
    fig, (top, bottom) = subplots(2, 1, figsize=(8, 6.5), sharex=True)
    top.plot(time, x, lw=0.8, alpha=0.6, label="data")
    onestep = k_step_ahead(model, x, tau, 1)[:, 0]
    top.plot(time[tau:], onestep, label="1-step preds")
    top.plot(time[start:], free_run(model, x, tau, start)[start:], label=f"multistep preds (from t={start})")
    preds = k_step_ahead(model, x, tau, max(steps))
    for k in steps:
        bottom.plot(time[tau + k - 1 : tau + k - 1 + len(preds)], preds[:, k - 1], label=f"{k}-step preds")
    for ax in (top, bottom):
        ax.set_ylabel("x")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    bottom.set_xlabel("time")
    fig.tight_layout()
    path = Path(path)
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description="Plot 1-step and k-step-ahead predictions on the noisy sine.")
    p.add_argument("--ckpt_path", required=True)
    p.add_argument("--out", default="runs/forecast/sine_forecast.png", help="the PNG to write")
    p.add_argument("--steps", type=number(int, 1, 10_000), nargs="+", default=[1, 4, 16, 64],
                   help="k of the k-step-ahead predictions (1-10000)")
    p.add_argument("--dry_run", action="store_true", help="load and check the inputs, then stop")
    args = p.parse_args(argv)
    checkpoint_file(args.ckpt_path, "--ckpt_path")
    task = load_task(args.ckpt_path, Regression)
    data = load_datamodule(args.ckpt_path, NoisySine)  # the series it was trained on
    if args.dry_run:
        return print(f"dry run: {args.ckpt_path} holds a sine regression; would write {args.out}")
    out = plot(task.model, data, args.out, args.steps)
    print(f"wrote {out}")
    return out


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo forecast``)."""
    run_command(lambda: main(argv))


if __name__ == "__main__":
    run()
