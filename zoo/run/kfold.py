"""``zoo.fit --folds K``: the data module's training rows in K saved folds, then one run per
fold through ``zoo.run.folds.cross_validate`` (the driver the competitions use too), which
writes the folds' ``cv.json``. Apart from ``zoo.run.folds`` because it needs the run folder's
naming and the data modules' ``FoldedData``, which import torch and Lightning, and the
competitions' light stages import neither."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datamodules.base import FoldedData
from zoo.core.errors import ConfigError
from zoo.run.folder import default_name
from zoo.run.folds import cross_validate, load_or_make_folds
from zoo.run.tables import print_cv_table


def fit_k_folds(cli: Any, args: list[str] | None, fit: Callable[[list[str]], dict[str, Any] | None]) -> dict[str, Any]:
    """``--folds K``: the data module's training rows in K folds (stratified by label when it
    gives labels), saved in ``<root>/<name>_cv<K>/folds.csv`` (a rerun uses the same folds),
    then one run per fold (``<root>/<name>_cv<K>/fold<k>/version_N``, by ``fit``: zoo.fit's run)
    validating on that fold and testing on the test set; ``cv.json`` (its keys: see
    ``cross_validate``) is scored by the task's monitored metric when it is a ``val/`` one.
    ``cli`` is the parsed ``ZooCLI`` with its task and data module."""
    cfg, data = cli.config, cli.datamodule
    k = cfg.folds
    if k < 2:
        raise ConfigError(f"--folds {k}: expected 0 (no cross-validation) or at least 2 folds")
    if not isinstance(data, FoldedData):
        raise ConfigError(f"--folds: {type(data).__name__} cannot hold out folds (it is no "
                         "datamodules.base.FoldedData, with fold/folds_file arguments and fold_rows)")  # fmt: skip
    if cfg.ckpt_path:
        raise ConfigError("--folds with --ckpt_path: resume one fold's run instead (--trainer.default_root_dir "
                         "<root>/<name>_cv<K> --name fold<k> --ckpt_path last, its data options)")  # fmt: skip
    name = cfg.name or default_name(cfg)
    cv_dir = Path(cfg.trainer.default_root_dir or "runs") / f"{name}_cv{k}"
    ids, labels = data.fold_rows()
    folds_file = (cv_dir / "folds.csv").resolve()
    load_or_make_folds(folds_file, ids, k, seed=cfg.data.init_args.get("seed") or 0, labels=labels)
    argv = _without_folds(list(sys.argv[1:] if args is None else args))

    def args_of_fold(fold: int) -> list[str]:
        return [*argv, "--folds", "0", "--trainer.default_root_dir", str(cv_dir), "--name", f"fold{fold}",
                "--data.init_args.folds_file", str(folds_file), "--data.init_args.fold", str(fold)]  # fmt: skip

    monitor = cli.model.monitor[0]
    result = cross_validate(fit, args_of_fold, range(k), cv_dir, name=name, folds_file=folds_file,
                            score_key=monitor if monitor.startswith("val/") else None)  # fmt: skip
    print_cv_table(f"{name}: {k}-fold cross-validation", result)
    return {**result, "cv_file": str(cv_dir / "cv.json")}


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
