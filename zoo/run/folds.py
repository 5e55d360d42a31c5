"""K-fold cross-validation: splits, stratified by class for classification, saved so reruns
use the same folds, one ``zoo.fit`` run per fold, and the mean and standard deviation of each
metric over the folds. ``zoo.fit --folds K`` and the competitions (``competitions.kit``) both
run their folds through this module.

Written here rather than taken from scikit-learn's ``StratifiedKFold``: the zoo does not
otherwise depend on scikit-learn, and the split is a few lines with a seeded generator.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoo.core.errors import ConfigError
from zoo.core.io import atomic_write, write_json

FOLD_COLUMNS = ["id", "fold"]


def make_folds(ids: Sequence, k: int, seed: int = 0, labels: Sequence | None = None) -> pd.DataFrame:
    """``id, fold`` with fold in ``0..k-1``. With ``labels`` each class is shuffled and dealt
    round-robin, so every fold holds each class in (nearly) its overall proportion."""
    n = len(ids)
    if not 2 <= k <= n:
        raise ConfigError(f"folds={k}: need 2 <= folds <= {n} (the number of training rows)")
    rng = np.random.default_rng(seed)
    fold = np.empty(n, dtype=np.int64)
    if labels is None:
        fold[rng.permutation(n)] = np.arange(n) % k
    else:
        labels = np.asarray(labels)
        start = 0  # continue dealing where the last class stopped, so small classes spread out
        for cls in sorted(set(labels.tolist()), key=str):
            rows = rng.permutation(np.flatnonzero(labels == cls))
            fold[rows] = (start + np.arange(len(rows))) % k
            start += len(rows)
    return pd.DataFrame({"id": list(ids), "fold": fold})


def load_or_make_folds(
    path: str | Path, ids: Sequence, k: int, seed: int = 0, labels: Sequence | None = None
) -> pd.DataFrame:
    """The folds saved at ``path`` when they cover exactly ``ids`` with ``k`` folds; otherwise
    an error (the data changed: delete the file to draw new folds). Absent: drawn and saved."""
    path = Path(path)
    if path.is_file():
        folds = pd.read_csv(path, dtype={"id": str})
        if list(folds.columns) != FOLD_COLUMNS:
            raise ConfigError(f"{path}: expected columns {FOLD_COLUMNS}, found {list(folds.columns)}")
        saved, now = set(folds["id"]), {str(i) for i in ids}
        if saved != now or folds["fold"].nunique() != k:
            raise ConfigError(
                f"{path} holds {len(saved)} ids in {folds['fold'].nunique()} folds, but the data has "
                f"{len(now)} ids ({len(now - saved)} new, {len(saved - now)} gone) and folds={k}; "
                "delete the file to draw new folds"
            )
        return folds
    folds = make_folds([str(i) for i in ids], k, seed, labels)
    with atomic_write(path) as f:
        folds.to_csv(f, index=False)
    return folds


def fit_folds(fit: Callable[[list[str]], dict[str, Any] | None], args_of_fold: Callable[[int], list[str]],
              folds: Iterable[int], record_dir: str | Path) -> list[dict[str, Any]]:  # fmt: skip
    """One run per fold: ``fit(args_of_fold(k))`` (``zoo.fit``'s main) for each ``k``, in order;
    returns their summaries with ``fold`` added.

    A fold that already finished with the same arguments is not trained again, so a rerun after
    an interruption (a killed process, a full disk) trains only what is missing. Each finished
    fold leaves ``<record_dir>/fold<k>.done.json``, written atomically after its run wrote its
    ``metrics.json``: the fold's arguments, the SHA-256 of every file they name (the recipe, the
    folds file: the same path with other content is another run) and that ``metrics.json``. A
    later call whose arguments and files match reads the fold's summary back from it and says so
    on stderr; a fold stopped part-way has no record and starts again (a new ``version_N``).
    What the arguments do not name (the files in a data folder, the zoo's code) is not compared:
    delete the record to train that fold again."""
    record_dir = Path(record_dir)
    summaries = []
    for k in folds:
        args, record = args_of_fold(k), record_dir / f"fold{k}.done.json"
        files = _named_files(args)
        summary = _finished(record, args, files)
        if summary is not None:
            print(f"fold {k}: reused {summary['metrics_file']}, finished with the same arguments "
                  f"(delete {record} to train it again)", file=sys.stderr)  # fmt: skip
        else:
            summary = fit(args)
            if summary is None:
                raise ConfigError(f"fold {k}: the run returned no summary")
            if summary.get("metrics_file"):  # a fast_dev_run writes none: nothing to reuse
                write_json(record, {"args": args, "files": files, "metrics_file": summary["metrics_file"]})
        summaries.append({"fold": k, **summary})
    return summaries


def _named_files(args: Sequence[str]) -> dict[str, str]:
    """``{argument: SHA-256 of its content}`` for each argument that names a file."""
    return {a: hashlib.sha256(Path(a).read_bytes()).hexdigest() for a in args if Path(a).is_file()}


def _finished(record: Path, args: list[str], files: dict[str, str]) -> dict[str, Any] | None:
    """The summary of the run ``record`` names when it ran with ``args`` and ``files``; else
    ``None`` (no record, another run, or its ``metrics.json`` gone or unreadable)."""
    try:
        saved = json.loads(record.read_text())
        if saved["args"] != args or saved["files"] != files:
            return None
        metrics = Path(saved["metrics_file"])
        return {**json.loads(metrics.read_text()), "metrics_file": str(metrics)}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cv_summary(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{"mean": {metric: m}, "std": {metric: s}, "folds": [...]}`` over the folds' test
    metrics, best validation metrics and wall seconds. ``std`` is the sample standard deviation
    (n - 1); with one fold it is NaN."""
    per_fold = [{**s.get("test", {}), **s.get("best_val", {}), "wall_seconds": s.get("wall_seconds")}
                for s in summaries]  # fmt: skip
    names = [k for k in per_fold[0] if all(isinstance(f.get(k), (int, float)) for f in per_fold)] if per_fold else []
    values = {k: [float(f[k]) for f in per_fold] for k in names}
    return {
        "mean": {k: statistics.fmean(v) for k, v in values.items()},
        "std": {k: statistics.stdev(v) if len(v) > 1 else math.nan for k, v in values.items()},
        "folds": [{"fold": s["fold"], **f} for s, f in zip(summaries, per_fold)],
    }
