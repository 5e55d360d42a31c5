"""A CSV logger that keeps its file when a run is resumed.

Lightning's CSV writer deletes an existing ``metrics.csv`` when it opens a run folder; a run
resumed with ``--ckpt_path last`` writes into its own folder again, so that would erase the
log of the epochs before the interruption. This writer continues the file instead.

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

from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from zoo.core.io import atomic_write


class _ContinuingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = list(csv.DictReader(f).fieldnames or [])


class ResumableCSVLogger(CSVLogger):
    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment


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
