"""``zoo.fit --folds K``: the data module's training rows in K saved folds, then one run per
fold through ``zoo.run.folds.fit_folds`` (the driver the competitions use too) and the folds'
``cv.json``. Apart from ``zoo.run.folds`` because it needs the run folder's naming and the CLI's
data module, which the competitions' light stages do not import."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.core.errors import ConfigError
from zoo.core.io import write_json
from zoo.run.folder import default_name
from zoo.run.folds import cv_summary, fit_folds, load_or_make_folds
from zoo.run.tables import print_cv_table


def fit_k_folds(cli: Any, args: list[str] | None, fit: Callable[[list[str]], dict[str, Any] | None]) -> dict[str, Any]:
    """``--folds K``: the data module's training rows in K folds (stratified by label when it
    gives labels), saved in ``<root>/<name>_cv<K>/folds.csv`` (a rerun uses the same folds),
    then one run per fold (``<root>/<name>_cv<K>/fold<k>/version_N``, by ``fit``: zoo.fit's run)
    validating on that fold and testing on the test set; ``cv.json`` holds each fold's metrics,
    their mean and std. ``cli`` is the parsed ``ZooCLI`` with its data module."""
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
    name = cfg.name or default_name(cfg)
    cv_dir = Path(cfg.trainer.default_root_dir or "runs") / f"{name}_cv{k}"
    ids, labels = data.fold_rows()
    folds_file = (cv_dir / "folds.csv").resolve()
    load_or_make_folds(folds_file, ids, k, seed=cfg.data.init_args.get("seed") or 0, labels=labels)
    argv = _without_folds(list(sys.argv[1:] if args is None else args))

    def args_of_fold(fold: int) -> list[str]:
        return [*argv, "--folds", "0", "--trainer.default_root_dir", str(cv_dir), "--name", f"fold{fold}",
                "--data.init_args.folds_file", str(folds_file), "--data.init_args.fold", str(fold)]  # fmt: skip

    summaries = fit_folds(fit, args_of_fold, range(k), cv_dir)
    result = {"name": name, "folds_file": str(folds_file), **cv_summary(summaries)}
    write_json(cv_dir / "cv.json", result)
    result["cv_file"] = str(cv_dir / "cv.json")
    print_cv_table(f"{name}: {k}-fold cross-validation", result)
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
