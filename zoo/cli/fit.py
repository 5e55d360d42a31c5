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
from zoo.core.io import atomic_write
from zoo.models.weights import check_course_file
from zoo.run.allocator import keep_allocations_on_heap
from zoo.run.callbacks import ModelTable
from zoo.run.errors import user_errors_as_one_line
from zoo.run.faults import FiniteLossGuard, RNGState, fault_plugins
from zoo.run.folder import RunFolder, discard_if_unresumable, plan_run
from zoo.run.kfold import fit_k_folds
from zoo.run.loggers import make_wandb_logger, quiet_console
from zoo.run.resume import ScheduleHorizon
from zoo.run.tables import print_table
from zoo.tasks.base import DATA_FACTS, ZooTask
from zoo.tasks.media import wandb_logger


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
        trainer = self.config.get("trainer")
        if trainer is not None and trainer.get("precision") is None:  # unset: the zoo's default, not Lightning's
            trainer.precision = default_precision(trainer.get("accelerator"))
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
            loggers.append(make_wandb_logger(cfg.wandb_project, self.run.name, self.run.dir))
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


def default_precision(accelerator: Any) -> str | None:
    """``bf16-mixed`` (bf16 autocast, float32 weights) when the run lands on a CUDA GPU that has
    bf16 (Ampere and later): twice the matrix throughput for the same recipe, with float32's
    range, so no loss scaling. Otherwise None: Lightning's float32. ``--trainer.precision 32-true``
    keeps float32 on a GPU."""
    on_cuda = accelerator in (None, "auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if on_cuda and torch.cuda.is_bf16_supported() else None


class AtomicSaveConfig(SaveConfigCallback):
    """Saves ``config.yaml`` into the run folder through ``atomic_write`` (Lightning's own
    callback writes the file in place), from global rank 0 only."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        path = Path(trainer.loggers[0].log_dir) / self.config_filename
        with atomic_write(path) as f:
            f.write(self.parser.dump(self.config, skip_none=False))


def main(args: list[str] | None = None, one_line_errors: bool = False) -> dict[str, Any] | None:
    """Fit, test, write ``metrics.json``; returns the summary. With ``one_line_errors`` (the
    command line) a configuration or data error, or a diverged loss, exits with one line."""
    keep_allocations_on_heap()
    quiet_console()
    try:
        with user_errors_as_one_line(one_line_errors):
            return _fit(args, exit_on_error=not one_line_errors)
    finally:
        # a DDP run's process group is shut down before the interpreter exits: otherwise gloo's
        # threads can be torn down mid-way, and a finished run aborts ("terminate called without
        # an active exception"); a next run in this process (a fold) starts a new group
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


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
        return fit_k_folds(cli, args, lambda a: _fit(a, exit_on_error))
    trainer, model, data, run = cli.trainer, cli.model, cli.datamodule, cli.run
    try:
        trainer.fit(model, datamodule=data, ckpt_path=run.resume_from)
    except BaseException:
        if run.fresh and trainer.is_global_zero:
            discard_if_unresumable(run.dir)
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
        print_table(run.name, summary)
        wandb = wandb_logger(trainer)
        if wandb is not None:  # W&B keeps its run open: the next run of this process (a fold) needs its own
            wandb.experiment.finish()
    return summary


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo.fit``, ``python -m zoo fit``): mistakes as one line."""
    main(argv, one_line_errors=True)


if __name__ == "__main__":
    run()
