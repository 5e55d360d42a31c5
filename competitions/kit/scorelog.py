"""The score log: one CSV row per ``fit`` or ``predict`` run, appended, never rewritten."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from zoo.core.errors import ConfigError

COLUMNS = ["time_utc", "competition", "stage", "metric", "cv_score", "fold_scores",
           "wall_seconds", "config", "overrides", "output"]  # fmt: skip


def append_score(path: str | Path, **row: Any) -> Path:
    """Append ``row`` (keys from ``COLUMNS``) to the CSV at ``path``, writing the header once.

    An append of one short line rather than an atomic rewrite: the rows already there are
    never touched, so an interrupted run can at worst leave its own line incomplete.
    """
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ConfigError(f"unknown score-log columns {sorted(unknown)}; expected {COLUMNS}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file() or path.stat().st_size == 0
    row.setdefault("time_utc", dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)
    return path
