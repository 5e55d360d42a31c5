"""The run report ``zoo.fit`` adds to every run: the epoch history, its plot (``curves.png``),
training throughput and ``metrics.json``."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities.model_summary import get_human_readable_count
from rich import get_console
from rich.table import Table

from zoo.core.io import save_figure, subplots, write_json
from zoo.tasks.media import wandb_logger


def _scalar(v: Any) -> float | None:
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = v.item()
    return float(v) if isinstance(v, (int, float)) else None


class RunReport(L.Callback):
    """Keeps per-epoch train/val metrics and training throughput; after the fit it draws the
    curves (``curves.png``), and ``write_metrics`` writes ``metrics.json``. Files are written
    by rank 0 only, atomically, into ``run_dir``.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.history: list[dict[str, float]] = []
        self.train_seconds = 0.0
        self.train_examples = 0
        self._t_ref = time.perf_counter()
        self._t_start = time.perf_counter()

    # -- kept in checkpoints, so a resumed run's curves and throughput cover the whole run ----
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "train_seconds": self.train_seconds,
                "train_examples": self.train_examples}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state["history"])
        self.train_seconds = state["train_seconds"]
        self.train_examples = state["train_examples"]

    # -- throughput: the time spent in training batches (data loading included), so neither
    # -- validation nor the epoch's end (checkpoints, logs) counts as training time ----------
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t_ref = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        self._t_ref = time.perf_counter()  # a validation run inside the epoch is not training

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        self.train_seconds += now - self._t_ref
        self._t_ref = now
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.train_examples += len(x) * trainer.world_size

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        row = {"epoch": trainer.current_epoch}
        for k, v in trainer.callback_metrics.items():
            if (k.startswith(("train/", "val/")) and not k.endswith("_step")) and _scalar(v) is not None:
                row[k.removesuffix("_epoch")] = _scalar(v)
        self.history.append(row)

    def on_fit_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero and any(len(row) > 1 for row in self.history):
            path = plot_curves(self.history, self.run_dir / "curves.png")
            wandb = wandb_logger(trainer)
            if wandb is not None:
                wandb.log_image(key="curves", images=[str(path)])

    def summary(self, trainer: L.Trainer, test_metrics: dict[str, float], monitor: str) -> dict[str, Any]:
        ckpt = trainer.checkpoint_callback
        best = _scalar(ckpt.best_model_score) if ckpt is not None and ckpt.best_model_score is not None else None
        # the last epoch's training metrics: what the course prints, and the only signal of a run
        # whose validation means nothing (its checkpoint is then picked by a train/ metric)
        final_train = {k: v for k, v in (self.history[-1] if self.history else {}).items() if k.startswith("train/")}
        picked = {monitor: best} if best is not None else {}
        return {
            "test": test_metrics,
            "best_val": picked if monitor.startswith("val/") else {},
            **({} if monitor.startswith("val/") else {"best_train": picked}),
            "final_train": final_train,
            "best_checkpoint": getattr(ckpt, "best_model_path", "") or None,
            "epochs": trainer.current_epoch,
            "wall_seconds": round(time.perf_counter() - self._t_start, 2),
            "train_seconds": round(self.train_seconds, 3),
            "train_examples_per_second": round(self.train_examples / self.train_seconds, 1)
            if self.train_seconds > 0
            else None,
        }

    def write_metrics(self, summary: dict[str, Any]) -> Path:
        path = self.run_dir / "metrics.json"
        write_json(path, summary)
        return path


def plot_curves(history: list[dict[str, float]], path: Path) -> Path:
    """One panel per metric name (loss, acc, ...), train and val lines against the epoch."""
    names = sorted({k.split("/", 1)[1] for row in history for k in row if "/" in k})
    fig, axes = subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for stage in ("train", "val"):
            pts = [(r["epoch"] + 1, r[f"{stage}/{name}"]) for r in history
                   if f"{stage}/{name}" in r and math.isfinite(r[f"{stage}/{name}"])]  # fmt: skip
            if pts:
                ax.plot(*zip(*pts), marker="o", label=stage)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


class ModelTable(ModelSummary):
    """The model summary ``zoo.fit`` prints before training: Lightning's layers, parameter counts
    and modes, without its FLOPs column and total, which read 0 unless a task defines an
    ``example_input_array`` (none does: inputs differ per data set)."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int = 0,
                  **summarize_kwargs: Any) -> None:  # fmt: skip
        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style="bold magenta")
        for i, (name, _) in enumerate(columns):
            table.add_column(" " if i == 0 else name, justify="right" if name.startswith("Params") else "left",
                             style="dim" if i == 0 else None)  # fmt: skip
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        trainable, frozen = (get_human_readable_count(int(n)).strip()
                             for n in (trainable_parameters, total_parameters - trainable_parameters))  # fmt: skip
        console.print(f"[bold]Params[/]: {trainable} trainable, {frozen} frozen ({model_size:,.1f} MB); "
                      f"[bold]modules[/]: {total_training_modes['train']} training, "
                      f"{total_training_modes['eval']} eval")  # fmt: skip
