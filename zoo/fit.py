"""``python -m zoo.fit``: train any task on any data module from a YAML recipe, then test.

A LightningCLI over ``zoo.tasks`` and ``datamodules``. Every constructor argument is an option
(``--model.init_args.lr 0.1``, ``--data.init_args.batch_size 128``, ``--trainer.max_epochs 5``);
``--print_config`` prints the resolved config. Each run gets a folder
``<trainer.default_root_dir>/<name>/version_N`` with the CSV log, checkpoints (best and
last), ``config.yaml``, ``curves.png`` and ``metrics.json``. ``--ckpt_path last`` resumes the
latest run of the same name in its own folder (with ``--wandb true``, the same W&B run: its id
is kept in the folder's ``wandb_id``). ``--folds K`` trains one run per fold of the training
split instead (``zoo.run.folds``) and writes the mean and standard deviation of every metric.
"""

from __future__ import annotations

import ctypes
import inspect
import os
import re
import secrets
import shutil
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import Logger

import datamodules  # noqa: F401  (registers the data modules as subclasses for the CLI)
import zoo.tasks  # noqa: F401
from datamodules.base import ZooDataModule
from zoo.core.checkpoint import CheckpointError, checkpoint_file, load_checkpoint
from zoo.core.errors import ConfigError
from zoo.core.io import atomic_write, read_yaml, write_json
from zoo.models.weights import check_course_file
from zoo.run.callbacks import ModelTable, RunReport
from zoo.run.errors import user_errors_as_one_line
from zoo.run.faults import FiniteLossGuard, RNGState, fault_plugins
from zoo.run.folds import cv_summary, fit_folds, load_or_make_folds
from zoo.run.loggers import ResumableCSVLogger, quiet_console
from zoo.run.resume import ScheduleHorizon, describe_resume
from zoo.tasks.base import DATA_FACTS, ZooTask

VERSION_ENV = "ZOO_RUN_VERSION"  # passes rank 0's run folder to the other DDP processes
WANDB_ID_FILE = "wandb_id"  # in the run folder: the W&B run a resumed run continues


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
    name = cfg.name or _default_name(cfg)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"--name {name!r}: expected letters, digits, '_', '.' or '-' (one folder under {root})")
    resume_from, version = _resolve_resume(cfg.ckpt_path, root / name)
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


class ZooCLI(LightningCLI):
    """LightningCLI with the zoo's run folder, callbacks and options. After parsing,
    ``self.run`` is the run's ``RunFolder``."""

    run: RunFolder

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--name", type=str | None, default=None,
                            help="experiment name (default: the recipe's file name)")  # fmt: skip
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="checkpoint to resume from; 'last' = the latest run of this name")  # fmt: skip
        parser.add_argument("--wandb", type=bool, default=False,
                            help="also log to Weights & Biases (offline when no API key is set)")  # fmt: skip
        parser.add_argument("--wandb_project", type=str, default="d2l-zoo")
        parser.add_argument("--folds", type=int, default=0,
                            help="k-fold cross-validation: a run per fold of the training split (0: off)")  # fmt: skip
        for fact in DATA_FACTS:
            parser.link_arguments(f"data.{fact}", f"model.init_args.{fact}", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        # a pretrained model's vocabulary is the data's: --model.init_args.pretrained names the file
        # for both (a BERT fine-tuned on SNLI), unless --data.init_args.vocab_from names one itself
        model, data = self.config.model.get("init_args"), self.config.data.get("init_args")
        if model is not None and data is not None and model.get("pretrained") and "vocab_from" in data:
            check_course_file(model.pretrained)  # a damaged course zip: its SHA-1 line, before the data reads it
            if data.vocab_from is None:
                data.vocab_from = model.pretrained

    def parse_arguments(self, parser, args) -> None:
        # as LightningCLI's, without its warning when both ``args`` and ``sys.argv`` are given:
        # competitions and --folds call main(args) from their own command line on purpose
        if isinstance(args, (dict, Namespace)):
            self.config = parser.parse_object(args)
        else:
            self.config = parser.parse_args(args)

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer | None:
        cfg = self.config
        if cfg.folds:
            return None  # each fold's run builds its own trainer
        self.run, csv = plan_run(cfg, self.model)
        loggers: list[Logger] = [csv]
        if cfg.wandb:
            loggers.append(_wandb_logger(cfg.wandb_project, self.run.name, self.run.dir))
        metric, mode = self.model.monitor
        ckpt_dir = self.run.dir / "checkpoints"
        self.trainer_defaults["callbacks"] = [
            ModelCheckpoint(dirpath=ckpt_dir, monitor=metric, mode=mode, filename="best-{epoch:03d}",
                            auto_insert_metric_name=False,
                            save_on_train_epoch_end=True if metric.startswith("train/") else None),
            # last.ckpt at every epoch's end: Lightning's save_last refreshes it only when a best one
            # is saved, and a checkpoint without a monitor waits for validation when
            # check_val_every_n_epoch > 1
            ModelCheckpoint(dirpath=ckpt_dir, filename="last", enable_version_counter=False,
                            save_on_train_epoch_end=True),
            self.run.report,
            RNGState(),
            FiniteLossGuard(),
            ScheduleHorizon(),
        ]  # fmt: skip
        if self.config_init.get("trainer", {}).get("enable_model_summary") is not False:
            self.trainer_defaults["callbacks"].append(ModelTable())
        kwargs["enable_model_summary"] = False  # no second, default summary beside ModelTable
        kwargs["plugins"] = fault_plugins(self.config_init.get("trainer", {}).get("plugins"))
        return super().instantiate_trainer(logger=loggers, **kwargs)


class AtomicSaveConfig(SaveConfigCallback):
    """Saves ``config.yaml`` into the run folder through ``atomic_write`` (Lightning's own
    callback writes the file in place), from global rank 0 only."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        path = Path(trainer.loggers[0].log_dir) / self.config_filename
        with atomic_write(path) as f:
            f.write(self.parser.dump(self.config, skip_none=False))


def _default_name(cfg) -> str:
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


def _resolve_resume(ckpt_path: str | None, experiment: Path) -> tuple[str | None, str | None]:
    """``last`` -> the newest ``last.ckpt`` among this experiment's runs, and that run's folder."""
    if ckpt_path != "last":
        if ckpt_path:
            checkpoint_file(ckpt_path, "--ckpt_path")
        return ckpt_path, None
    runs = sorted(experiment.glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError(f"--ckpt_path last: no {experiment}/version_*/checkpoints/last.ckpt to resume")
    return str(runs[-1]), runs[-1].parent.parent.name


def _wandb_logger(project: str, name: str, run_dir: Path) -> Logger:
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


def keep_allocations_on_heap() -> bool:
    """Ask glibc to serve large blocks (up to 32 MiB) from the heap and not to give the heap
    back to the system after every free. By default it maps each large activation tensor fresh
    with mmap and unmaps it on free, so every CPU training step page-faults its activations in
    again; on LeNet that made epochs ~10% slower and far noisier.
    A no-op where the C library is not glibc. Returns whether both settings took."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


def main(args: list[str] | None = None, one_line_errors: bool = False) -> dict[str, Any] | None:
    """Fit, test, write ``metrics.json``; returns the summary. With ``one_line_errors`` (the
    command line) a configuration or data error, or a diverged loss, exits with one line."""
    keep_allocations_on_heap()
    quiet_console()
    with user_errors_as_one_line(one_line_errors):
        return _fit(args, exit_on_error=not one_line_errors)


def make_cli(args: list[str] | None = None, exit_on_error: bool = True) -> ZooCLI:
    """Parse ``args`` and build the task, data module and trainer, without fitting."""
    return ZooCLI(
        ZooTask,
        ZooDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        run=False,
        args=args,
        trainer_defaults={"default_root_dir": "runs", "log_every_n_steps": 50},
        save_config_callback=AtomicSaveConfig,
        save_config_kwargs={"save_to_log_dir": False},
        auto_configure_optimizers=False,
        parser_kwargs={"exit_on_error": exit_on_error},
    )


def _fit(args: list[str] | None, exit_on_error: bool = True) -> dict[str, Any] | None:
    cli = make_cli(args, exit_on_error)
    if cli.config.folds:
        return _fit_folds(cli, args, exit_on_error)
    trainer, model, data, run = cli.trainer, cli.model, cli.datamodule, cli.run
    try:
        trainer.fit(model, datamodule=data, ckpt_path=run.resume_from)
    except BaseException:
        if run.fresh and trainer.is_global_zero:
            _discard_if_unresumable(run.dir)
        raise
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    # testing a checkpoint restores the callbacks' states from it too: the report's figures of
    # the whole run would become those of the best epoch
    trained = run.report.state_dict()
    # the best checkpoint by its path: "best" would warn that there are two ModelCheckpoints
    results = trainer.test(model, datamodule=data, ckpt_path=best or None, verbose=False)
    run.report.load_state_dict(trained)
    test_metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    summary = run.report.summary(trainer, test_metrics, model.monitor[0])
    if trainer.is_global_zero:
        if not trainer.fast_dev_run:
            summary["metrics_file"] = str(run.report.write_metrics(summary))
        _print_table(run.name, summary)
        for logger in trainer.loggers:  # W&B keeps its run open: the next run of this process
            if type(logger).__name__ == "WandbLogger":  # (a fold, a competition's next fold) needs its own
                logger.experiment.finish()
    return summary


def _fit_folds(cli: ZooCLI, args: list[str] | None, exit_on_error: bool) -> dict[str, Any]:
    """``--folds K``: the data module's training rows in K folds (stratified by label when it
    gives labels), saved in ``<root>/<name>_cv<K>/folds.csv`` (a rerun uses the same folds),
    then one run per fold (``<root>/<name>_cv<K>/fold<k>/version_N``) validating on that fold
    and testing on the test set; ``cv.json`` holds each fold's metrics, their mean and std."""
    cfg, data = cli.config, cli.datamodule
    k = cfg.folds
    if k < 2:
        raise ConfigError(f"--folds {k}: expected 0 (no cross-validation) or at least 2 folds")
    if not (hasattr(data, "fold_rows") and {"fold", "folds_file"} <= set(inspect.signature(type(data)).parameters)):
        raise ConfigError(f"--folds: {type(data).__name__} cannot hold out folds (it has no fold_rows and "
                         "fold/folds_file arguments)")  # fmt: skip
    if cfg.ckpt_path:
        raise ConfigError("--folds with --ckpt_path: resume one fold's run instead (--trainer.default_root_dir "
                         "<root>/<name>_cv<K> --name fold<k> --ckpt_path last, its data options)")  # fmt: skip
    name = cfg.name or _default_name(cfg)
    cv_dir = Path(cfg.trainer.default_root_dir or "runs") / f"{name}_cv{k}"
    ids, labels = data.fold_rows()
    folds_file = (cv_dir / "folds.csv").resolve()
    load_or_make_folds(folds_file, ids, k, seed=cfg.data.init_args.get("seed") or 0, labels=labels)
    argv = _without_folds(list(sys.argv[1:] if args is None else args))

    def args_of_fold(fold: int) -> list[str]:
        return [*argv, "--folds", "0", "--trainer.default_root_dir", str(cv_dir), "--name", f"fold{fold}",
                "--data.init_args.folds_file", str(folds_file), "--data.init_args.fold", str(fold)]  # fmt: skip

    summaries = fit_folds(lambda a: _fit(a, exit_on_error), args_of_fold, range(k), cv_dir)
    result = {"name": name, "folds_file": str(folds_file), **cv_summary(summaries)}
    write_json(cv_dir / "cv.json", result)
    result["cv_file"] = str(cv_dir / "cv.json")
    _print_cv_table(f"{name}: {k}-fold cross-validation", result)
    return result


def _without_folds(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--folds":
            skip = True
        elif not a.startswith("--folds="):
            out.append(a)
    return out


#: what a new run writes before its first checkpoint
_EARLY_FILES = {"config.yaml", "hparams.yaml", "metrics.csv", WANDB_ID_FILE}


def _discard_if_unresumable(run_dir: Path) -> None:
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


def _print_table(name: str, summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{name}: final metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = {**summary["test"], **summary["best_val"]}
    for key in ("epochs", "wall_seconds", "train_examples_per_second"):
        rows[key] = summary[key]
    for k, v in rows.items():
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    Console(file=sys.stdout).print(table)


def _print_cv_table(title: str, result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    for f in result["folds"]:
        table.add_column(f"fold {f['fold']}", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("std", justify="right")
    for key, mean in result["mean"].items():
        fmt = ".1f" if key == "wall_seconds" else ".4f"
        cells = [f"{v:{fmt}}" for v in (*(f[key] for f in result["folds"]), mean, result["std"][key])]
        table.add_row(key, *cells)
    # a log file or pipe gets the whole table, not one squeezed to 80 columns
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200).print(table)


if __name__ == "__main__":
    main(one_line_errors=True)
