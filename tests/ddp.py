"""Running ``python -m zoo.fit`` in a subprocess for the two-process CPU DDP tests (the
arguments carry ``--trainer.strategy ddp --trainer.devices 2``): each task's test then checks
that the logged validation and test metrics are those of the whole split."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from zoo.run.folder import VERSION_ENV

ROOT = Path(__file__).parents[1]


def fit_in_subprocess(args: list[str], run_dir: Path, timeout: int = 240) -> dict:
    """``zoo.fit`` with ``args``, one torch thread a process; returns ``run_dir/metrics.json``."""
    env = {k: v for k, v in os.environ.items() if k != VERSION_ENV}  # a rank's folder must not leak in
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-m", "zoo.fit", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=timeout)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((run_dir / "metrics.json").read_text())
