"""The run's loggers: a CSV logger that keeps its file when a run is resumed, and W&B's.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it opens a run folder; a run
resumed with ``--ckpt_path last`` writes into its own folder again, so that would erase the
log of the epochs before the interruption. The zoo's logger keeps Lightning's folders and
versions and hands the rows to a writer of its own (through the public ``experiment``
property: no private name of Lightning's to patch), which continues the file instead.

``quiet_console`` keeps third-party lines a user cannot act on off the console.
"""

from __future__ import annotations

import csv
import logging
import os
import secrets
import string
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.loggers.logger import rank_zero_experiment

from zoo.core.io import atomic_write


class ContinuingCSV:
    """The writer behind ``ResumableCSVLogger``: ``metrics.csv`` (columns sorted, the union of
    every key logged, one row per logged step) continued where a run folder already has one, and
    ``hparams.yaml``. A key seen for the first time rewrites the file atomically under the wider
    header; other rows are appended."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir = Path(log_dir)
        self.metrics: list[dict[str, Any]] = []  # rows not yet written
        self.hparams: dict[str, Any] = {}

    def log_hparams(self, params: dict[str, Any]) -> None:
        self.hparams.update(params)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        save_hparams_to_yaml(self.log_dir / "hparams.yaml", self.hparams)

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        row = {k: v.item() if isinstance(v, torch.Tensor) else v for k, v in metrics.items()}
        self.metrics.append({**row, "step": len(self.metrics) if step is None else step})

    def save(self) -> None:
        if not self.metrics:
            return
        path = self.log_dir / "metrics.csv"
        keys, old = [], []
        if path.is_file():
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                keys = list(reader.fieldnames or [])
                if not set().union(*self.metrics) <= set(keys):
                    old = list(reader)
        wider = sorted(set(keys).union(*self.metrics))
        if path.is_file() and wider == keys:
            with open(path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=keys).writerows(self.metrics)
        else:  # a new file, or new columns: the whole file under the wider header
            with atomic_write(path, newline="") as f:
                writer = csv.DictWriter(f, fieldnames=wider)
                writer.writeheader()
                writer.writerows([*old, *self.metrics])
        self.metrics = []


class ResumableCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger`` (its folders, versions and flushing) writing through
    ``ContinuingCSV``, which keeps an existing ``metrics.csv``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writer: ContinuingCSV | None = None

    @property
    @rank_zero_experiment
    def experiment(self) -> ContinuingCSV:
        if self.writer is None:
            self.writer = ContinuingCSV(self.log_dir)
        return self.writer


#: Lightning's advert for its cloud logger, printed as an info line by every Trainer
_LIGHTNING_TIPS = ("💡 Tip: For seamless cloud logging",)
#: where Lightning's rank-zero info lines are logged (lightning.pytorch sets its own, fabric's is kept)
_RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_LIGHTNING_TIPS)


def quiet_console() -> None:
    """Drop the third-party console lines a zoo user cannot act on, each matched where it is
    raised, so every other warning and log line still shows. Called by every command's entry
    point (``zoo.fit``'s ``main``, ``zoo.run.errors.run_command``); calling it again is a no-op.

    * Lightning's litlogger tip (an info line of its rank-zero logger, on every Trainer);
    * torch 2.10's ``LeafSpec`` deprecation, which Lightning's own ``_pytree`` module triggers
      (a ``FutureWarning`` attributed to that module only).

    Two more are avoided where the zoo caused them rather than filtered: ``zoo.fit`` tests the
    best checkpoint by its path (not ``"best"``, which warns about several ``ModelCheckpoint``
    callbacks) and parses its ``args`` without LightningCLI's warning about ``sys.argv``.
    """
    for name in _RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning, module=r"lightning\.pytorch\.utilities\._pytree")  # fmt: skip


WANDB_ID_FILE = "wandb_id"  # in the run folder: the W&B run a resumed run continues


def make_wandb_logger(project: str, name: str, run_dir: Path) -> Logger:
    """The run's W&B logger. Its run id is kept in ``run_dir/wandb_id``: a resumed run (the
    same folder) and a DDP process other than rank 0 find it there and continue that W&B run,
    online or offline; a new folder draws a new id."""
    from lightning.pytorch.loggers import WandbLogger

    id_file = run_dir / WANDB_ID_FILE
    if id_file.is_file():
        run_id = id_file.read_text().strip()
    else:
        run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))  # W&B's id form
        if int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0:
            with atomic_write(id_file) as f:
                f.write(run_id + "\n")
    offline = not wandb_key_available()
    return WandbLogger(project=project, name=f"{name}/{run_dir.name}", save_dir=str(run_dir), id=run_id,
                       resume="allow", offline=offline, log_model=False)  # fmt: skip


def wandb_key_available() -> bool:
    """An API key in the environment or in ~/.netrc; without one W&B runs offline."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")
