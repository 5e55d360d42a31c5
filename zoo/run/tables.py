"""The tables ``zoo.fit`` prints at the end: a run's final metrics, and a cross-validation's
metrics per fold with their mean and standard deviation."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table


def print_table(name: str, summary: dict[str, Any]) -> None:
    table = Table(title=f"{name}: final metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = {**summary["test"], **summary["best_val"]}
    for key in ("epochs", "wall_seconds", "train_examples_per_second"):
        rows[key] = summary[key]
    for k, v in rows.items():
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    Console(file=sys.stdout).print(table)


def print_cv_table(title: str, result: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("metric")
    for f in result["folds"]:
        table.add_column(f"fold {f['fold']}", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("std", justify="right")
    for key, mean in result["mean"].items():
        fmt = ".1f" if key == "wall_seconds" else ".4f"
        cells = [f"{v:{fmt}}" for v in (*(f["metrics"][key] for f in result["folds"]), mean, result["std"][key])]
        table.add_row(key, *cells)
    # a log file or pipe gets the whole table, not one squeezed to 80 columns
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200).print(table)
