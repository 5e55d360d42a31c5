"""A run's folder, ``<root>/<name>/version_N``: its name (the recipe's, or the data set's beside
it), what ``--ckpt_path last`` resumes, the check that a checkpoint holds the recipe's model, and
the clean-up of a new run that failed before its first checkpoint."""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zoo.core.checkpoint import CheckpointError, checkpoint_file, load_checkpoint
from zoo.core.errors import ConfigError
from zoo.core.io import atomic_write, read_yaml
from zoo.run.callbacks import RunReport
from zoo.run.loggers import WANDB_ID_FILE, ResumableCSVLogger
from zoo.run.resume import describe_resume
from zoo.tasks.base import DATA_FACTS, ZooTask

VERSION_ENV = "ZOO_RUN_VERSION"  # passes rank 0's run folder to the other DDP processes

#: what a new run writes before its first checkpoint
_EARLY_FILES = {"config.yaml", "hparams.yaml", "metrics.csv", WANDB_ID_FILE}


@dataclass
class RunFolder:
    """Where a run writes (``<root>/<name>/version_N``), what it resumes from, and its report.

    Planned before the trainer is built, and before anything is written: a resume's
    checkpoint is checked against the recipe's model here, so a wrong ``--ckpt_path`` leaves
    the run folder (and its ``config.yaml``) as it was.
    """

    name: str
    dir: Path
    resume_from: str | None
    report: RunReport
    fresh: bool  # a new version_N folder, not a resumed one


def plan_run(cfg: Any, model: ZooTask) -> tuple[RunFolder, ResumableCSVLogger]:
    root = Path(cfg.trainer.default_root_dir or "runs")
    name = cfg.name or default_name(cfg)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"--name {name!r}: expected letters, digits, '_', '.' or '-' (one folder under {root})")
    resume_from, version = resolve_resume(cfg.ckpt_path, root / name)
    if resume_from:
        check_resumable(resume_from, model)
    if version and int(os.environ.get("LOCAL_RANK", 0)) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0:
        runs = len(list((root / name).glob("version_*/checkpoints/last.ckpt")))
        linked = {f"model.init_args.{fact}" for fact in DATA_FACTS}
        for line in describe_resume(root / name / version, resume_from, runs, cfg.as_dict(), linked):
            print(line, file=sys.stderr)
    fresh = version is None
    if fresh and int(os.environ.get("LOCAL_RANK", 0)) > 0:
        version = os.environ.get(VERSION_ENV)  # a DDP child: rank 0's folder
    csv = ResumableCSVLogger(root, name=name, version=version)
    os.environ[VERSION_ENV] = str(csv.version if isinstance(csv.version, str) else f"version_{csv.version}")
    run_dir = Path(csv.log_dir)
    return RunFolder(name, run_dir, resume_from, RunReport(run_dir), fresh), csv


def check_resumable(path: str, model: ZooTask) -> None:
    """The checkpoint at ``path`` holds this task's model, parameter for parameter."""
    ckpt = load_checkpoint(path, require=("state_dict",))
    saved = str(ckpt.get("hyper_parameters", {}).get("_class_path", "")).rsplit(".", 1)[-1]
    if saved and saved != type(model).__name__:  # compared by name: nothing the file names is imported
        raise CheckpointError(f"--ckpt_path {path}: holds a {saved} run, the recipe builds a {type(model).__name__}")
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items() if torch.is_tensor(v)}
    if own != theirs:
        diff = sorted(set(own) ^ set(theirs)) or [k for k in own if own[k] != theirs[k]]
        arch = ckpt.get("hyper_parameters", {}).get("arch", "another model")
        raise CheckpointError(f"--ckpt_path {path}: holds {arch}, whose parameters differ from the recipe's "
                              f"model (first: {diff[0]}); resume with the recipe that made it")  # fmt: skip


def default_name(cfg) -> str:
    """The recipe's file name (``_<data module>`` added when the data class is not the recipe's,
    so another data set's runs do not land beside the recipe's), else ``<arch>_<data module>``."""
    configs = cfg.get("config") or []
    data_class = cfg.data.class_path.rsplit(".", 1)[-1]
    if configs:
        recipe = read_yaml(str(configs[0]))
        recipe_data = str(((recipe or {}).get("data") or {}).get("class_path", "")).rsplit(".", 1)[-1]
        stem = Path(str(configs[0])).stem
        return stem if recipe_data in ("", data_class) else f"{stem}_{data_class.lower()}"
    arch = cfg.model.init_args.get("arch", "model")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{arch}_{data_class}".lower())


def resolve_resume(ckpt_path: str | None, experiment: Path) -> tuple[str | None, str | None]:
    """``last`` -> the newest ``last.ckpt`` among this experiment's runs, and that run's folder."""
    if ckpt_path != "last":
        if ckpt_path:
            checkpoint_file(ckpt_path, "--ckpt_path")
        return ckpt_path, None
    runs = sorted(experiment.glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError(f"--ckpt_path last: no {experiment}/version_*/checkpoints/last.ckpt to resume")
    return str(runs[-1]), runs[-1].parent.parent.name


def discard_if_unresumable(run_dir: Path) -> None:
    """A new run that failed before its first checkpoint leaves no ``version_N`` behind that
    looks like a run (``--ckpt_path last`` would not find it anyway); a folder holding anything
    else (a W&B log, a checkpoint) is kept and marked ``FAILED``."""
    if not run_dir.is_dir():
        return
    if {p.name for p in run_dir.iterdir()} <= _EARLY_FILES:
        shutil.rmtree(run_dir, ignore_errors=True)
    elif not any(run_dir.glob("checkpoints/*.ckpt")):
        with atomic_write(run_dir / "FAILED") as f:
            f.write("this run stopped before its first checkpoint; see the error it printed\n")
