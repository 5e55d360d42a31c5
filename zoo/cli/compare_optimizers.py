"""``python -m zoo compare_optimizers``: one run of ``zoo.fit`` per recipe (the same model, one
optimizer each), then one PNG of every loss curve against examples seen and against training
time, and a table (printed, and written as markdown beside the PNG).

    python -m zoo compare_optimizers configs/airfoil_*.yaml --out runs/compare/airfoil.png

The runs validate every ``--every`` training batches; ``LossClock`` logs, with each validation,
the examples trained on so far and the seconds spent in training batches (validation excluded,
as the course's ``train_ch11`` timer excludes its evaluation). On airfoil the validation set is
the training set, so each point is the loss over all the rows, the quantity the course plots.
Arguments after ``--`` go to every ``zoo.fit`` run (e.g. ``-- --data.init_args.data_dir DIR``).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L

from zoo.core.errors import ConfigError
from zoo.core.io import atomic_write, save_figure, subplots
from zoo.core.options import number
from zoo.run.errors import run_command


class LossClock(L.Callback):
    """Logs ``curve/examples`` and ``curve/seconds`` (time in training batches) with every
    validation, so the run's CSV log holds each validation loss beside them."""

    def __init__(self) -> None:
        self.examples, self.seconds, self._t0 = 0, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seconds += time.perf_counter() - self._t0
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.examples += len(x) * trainer.world_size

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            pl_module.log("curve/examples", float(self.examples), on_epoch=True)
            pl_module.log("curve/seconds", self.seconds, on_epoch=True)


@dataclass
class Curve:
    name: str
    examples: list[float]
    seconds: list[float]
    loss: list[float]


def read_curve(run_dir: Path, metric: str, name: str) -> Curve:
    """The rows of ``run_dir/metrics.csv`` that hold ``metric`` and the clock's two columns."""
    points = []
    with open(run_dir / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row.get(metric) and row.get("curve/examples"):
                points.append((float(row["curve/examples"]), float(row["curve/seconds"]), float(row[metric])))
    if not points:
        raise ConfigError(f"{run_dir}/metrics.csv: no {metric} beside curve/examples; did the run validate?")
    examples, seconds, loss = (list(c) for c in zip(*sorted(points)))
    return Curve(name, examples, seconds, loss)


def plot(curves: list[Curve], path: Path, metric: str) -> Path:
    fig, (by_examples, by_time) = subplots(1, 2, figsize=(11, 4), sharey=True)
    for c in curves:
        by_examples.plot(c.examples, c.loss, label=c.name)
        by_time.plot(c.seconds, c.loss, label=c.name)
    by_examples.set_xlabel("examples seen")
    by_time.set_xlabel("seconds in training batches")
    by_examples.set_ylabel(metric)
    for ax in (by_examples, by_time):
        ax.grid(alpha=0.3)
    by_time.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def table(curves: list[Curve], metric: str) -> str:
    lines = [f"| run | final {metric} | best {metric} | examples | training s |", "|---|---:|---:|---:|---:|"]
    for c in curves:
        final, best = f"{c.loss[-1]:.4f}", f"{min(c.loss):.4f}"
        lines.append(f"| {c.name} | {final} | {best} | {c.examples[-1]:.0f} | {c.seconds[-1]:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[Curve]:
    argv = sys.argv[1:] if argv is None else argv
    ours, fit_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description="Train one model per recipe and plot every loss curve.")
    p.add_argument("recipes", nargs="+", help="zoo.fit recipes, one per optimizer (e.g. configs/airfoil_*.yaml)")
    p.add_argument("--out", default="runs/compare_optimizers/curves.png", help="the PNG; the table goes beside it")
    p.add_argument("--every", type=number(int, 1), default=10, help="validate every this many training batches")
    p.add_argument("--metric", default="val/loss")
    p.add_argument("--root", default=None, help="run folders (default: beside --out)")
    p.add_argument("--dry_run", action="store_true", help="load and check the inputs, then stop")
    args = p.parse_args(ours)
    if args.every < 1:
        raise ConfigError(f"--every must be >= 1, got {args.every}")
    for recipe in args.recipes:
        if not Path(recipe).is_file():
            raise FileNotFoundError(f"{recipe}: no such recipe")
    if args.dry_run:
        return print(f"dry run: {len(args.recipes)} recipes; would write {args.out}")
    from zoo.cli import fit  # here: building the CLI is slow, and --help should not wait for it

    out = Path(args.out)
    root = Path(args.root) if args.root else out.parent / "runs"
    curves = []
    for recipe in args.recipes:
        name = Path(recipe).stem
        summary = fit.main(["--config", recipe, "--trainer.default_root_dir", str(root), "--name", name,
                            "--trainer.val_check_interval", str(args.every), "--trainer.enable_progress_bar", "false",
                            "--trainer.callbacks+=zoo.cli.compare_optimizers.LossClock", *fit_args],
                           one_line_errors=True)  # fmt: skip
        if not summary or "metrics_file" not in summary:
            raise ConfigError(f"{recipe}: the run wrote no metrics (a fast_dev_run writes none)")
        curves.append(read_curve(Path(summary["metrics_file"]).parent, args.metric, name))
    text = table(curves, args.metric)
    plot(curves, out, args.metric)
    with atomic_write(out.with_suffix(".md")) as f:
        f.write(text)
    print(text + f"wrote {out} and {out.with_suffix('.md')}")
    if not all(math.isfinite(c.loss[-1]) for c in curves):
        raise ConfigError("a run's final loss is not finite; see its metrics.csv")
    return curves


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo compare_optimizers``)."""
    run_command(lambda: main(argv))


if __name__ == "__main__":
    run()
