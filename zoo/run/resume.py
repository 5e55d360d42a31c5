"""Resuming a run: what ``--ckpt_path last`` picked and how this command line differs from it,
and learning-rate schedules rebuilt when the run is to train longer.

Lightning restores a scheduler's state with the checkpoint, and a schedule whose shape depends on
the total number of steps keeps the first run's total: ``OneCycleLR`` stops with "Tried to step 4
times. The specified number of total steps is 3" one epoch past the old end, and a cosine or a
warm-up horizon would keep the old length. ``ScheduleHorizon`` records the total it was built for
in the checkpoint; when a resumed run's total differs, it builds the task's schedule again for the
new total and replays it to the step the run has reached, so the schedule's shape is the new
one's from there on (the learning rate at that step may jump to the new shape's value).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.callbacks import Callback

# options that say how to resume, not what the run is
_NOT_SETTINGS = {"ckpt_path", "config", "print_config"}


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def settings_that_differ(saved: dict[str, Any], now: dict[str, Any], ignore: set[str] = frozenset()
                         ) -> list[tuple[str, Any, Any]]:  # fmt: skip
    """``(option, the run's value, this command line's)`` for every setting that differs, but
    those in ``ignore`` (values linked from the data module, filled in only once it is built)."""
    old, new = _flat(saved), _flat(now)
    keys = sorted(k for k in old.keys() | new.keys() if k.split(".")[0] not in _NOT_SETTINGS and k not in ignore)
    return [(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]


def describe_resume(run_dir: Path, ckpt: str, runs_of_name: int, now: dict[str, Any],
                    ignore: set[str] = frozenset()) -> list[str]:  # fmt: skip
    """The lines ``--ckpt_path last`` prints: which run it continues, and what this command line
    changes (its values win; weights, optimizer state and the epoch count come from the checkpoint)."""
    lines = [f"resume: {run_dir} ({ckpt}), the newest of {runs_of_name} run(s) named {run_dir.parent.name}; "
             "--name or --ckpt_path <file> picks another"]  # fmt: skip
    saved_file = run_dir / "config.yaml"
    if not saved_file.is_file():
        return [*lines, f"resume: {saved_file} is missing, so its settings cannot be compared"]
    saved = yaml.safe_load(saved_file.read_text(encoding="utf-8")) or {}
    differ = settings_that_differ(saved, now, ignore)
    if not differ:
        return [*lines, "resume: the settings are the run's own"]
    shown = ", ".join(f"{k} {old!r} -> {new!r}" for k, old, new in differ)
    return [*lines, f"resume: this command line differs from {saved_file} and wins: {shown}"]


class ScheduleHorizon(Callback):
    """Keeps the total number of optimizer steps the learning-rate schedules were built for, and
    rebuilds them (``pl_module.build_scheduler(optimizer, total)``) when a resumed run has another."""

    def __init__(self) -> None:
        self.total: int | None = None  # what the restored schedules were built for, when resumed

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = int(trainer.estimated_stepping_batches)
        built_for = self.total
        if built_for is None:  # a checkpoint without the record: OneCycleLR keeps its own
            built_for = next((getattr(c.scheduler, "total_steps", None) for c in trainer.lr_scheduler_configs), None)
        self.total = total
        if built_for is None or built_for == total or not trainer.lr_scheduler_configs:
            return
        step = trainer.global_step
        for config in trainer.lr_scheduler_configs:
            optimizer = config.scheduler.optimizer
            lrs = [g["lr"] for g in optimizer.param_groups]
            scheduler = pl_module.build_scheduler(optimizer, total)
            with warnings.catch_warnings():  # replaying: no optimizer step between these scheduler steps
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(step):
                    scheduler.step()
            config.scheduler = scheduler
            if trainer.is_global_zero:
                print(f"resume: the {type(scheduler).__name__} learning-rate schedule was built for {built_for} "
                      f"steps; rebuilt for {total} and continued at step {step} (lr "
                      f"{lrs[0]:.3g} -> {optimizer.param_groups[0]['lr']:.3g})", file=sys.stderr)  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        return {"total": self.total}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.total = state_dict.get("total")
