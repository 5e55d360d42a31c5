"""K-fold cross-validation: splits, stratified by class for classification, saved so reruns
use the same folds, one ``zoo.fit`` run per fold, and ``cv.json``: each fold's metrics and
model, and the mean and standard deviation of each metric over the folds. ``cross_validate`` is
the one driver; ``zoo.fit --folds K`` (through ``zoo.run.kfold``) and the competitions
(``competitions.kit``) both run their folds through it. It imports no torch or Lightning, so
the competitions' prepare stage stays quick to start.

Written here rather than taken from scikit-learn's ``StratifiedKFold``: the zoo does not
otherwise depend on scikit-learn, and the split is a few lines with a seeded generator.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import sys
import time
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
    """``{"mean": {metric: m}, "std": {metric: s}, "metrics": [{metric: value} per fold]}`` over
    the folds' test metrics, best validation metrics and wall seconds. ``std`` is the sample
    standard deviation (n - 1); with one fold it is NaN."""
    per_fold = [{**s.get("test", {}), **s.get("best_val", {}), "wall_seconds": s.get("wall_seconds")}
                for s in summaries]  # fmt: skip
    names = [k for k in per_fold[0] if all(isinstance(f.get(k), (int, float)) for f in per_fold)] if per_fold else []
    values = {k: [float(f[k]) for f in per_fold] for k in names}
    return {
        "mean": {k: statistics.fmean(v) for k, v in values.items()},
        "std": {k: statistics.stdev(v) if len(v) > 1 else math.nan for k, v in values.items()},
        "metrics": per_fold,
    }


def cross_validate(fit: Callable[[list[str]], dict[str, Any] | None], args_of_fold: Callable[[int], list[str]],
                   folds: Iterable[int], cv_dir: str | Path, *, name: str, folds_file: str | Path,
                   score_key: str | None, require_models: bool = False) -> dict[str, Any]:  # fmt: skip
    """One run per fold through ``fit_folds`` (so a finished fold is read back, not trained
    again), then ``<cv_dir>/cv.json``, written atomically once every fold finished; returns
    what it wrote. ``require_models``: a fold that saved no checkpoint or did not log
    ``score_key`` is an error, raised before ``cv.json`` is written (the competitions predict
    with every fold's model and log its score).

    ``cv.json``, the same keys for ``zoo.fit --folds`` and for every competition::

        name          the run's name (zoo.fit) or the competition's slug
        folds_file    the saved folds (a CSV id,fold), an absolute path
        score_key     the metric that scores a model on its held-out fold: the competition's
                      (a test/ metric, its test loader serving the held-out rows), or zoo.fit's
                      monitored val/ metric (the fold validates); null when there is none
        cv_score      the mean of score_key over the folds (null without one)
        cv_std        its sample standard deviation (n - 1; NaN with one fold; null without one)
        mean, std     {metric: value} over the folds, for every numeric metric in each fold's
                      ``metrics``
        wall_seconds  this call's wall time (a fold read back from its record counts ~0)
        folds         one entry per fold, in order:
            fold        the fold's number in folds_file
            args        the zoo.fit arguments of its run (the same as its foldN.done.json)
            run_dir     its run folder, <root>/fold<k>/version_N (null when it wrote no
                        metrics.json: a fast_dev_run)
            checkpoint  its model: the best checkpoint, or last.ckpt when nothing picked one
                        (null when it saved none)
            score       its score_key (null without one)
            metrics     its test metrics, best validation metric and wall_seconds
    """
    start, folds = time.perf_counter(), list(folds)
    summaries = fit_folds(fit, args_of_fold, folds, cv_dir)
    stats = cv_summary(summaries)
    entries = []
    for k, summary, metrics in zip(folds, summaries, stats["metrics"]):
        checkpoint, score = summary.get("best_checkpoint") or _last_checkpoint(summary), metrics.get(score_key)
        if require_models and not checkpoint:
            raise ConfigError(f"fold {k} saved no checkpoint (a fast_dev_run?); predict needs one per fold")
        if require_models and score is None:
            raise ConfigError(f"fold {k} logged no {score_key}, the score of a fold; it logged "
                              f"{', '.join(metrics) or 'nothing'}")  # fmt: skip
        run_dir = str(Path(summary["metrics_file"]).parent) if summary.get("metrics_file") else None
        entries.append({"fold": k, "args": args_of_fold(k), "run_dir": run_dir, "checkpoint": checkpoint,
                        "score": score, "metrics": metrics})  # fmt: skip
    result = {"name": name, "folds_file": str(Path(folds_file).resolve()), "score_key": score_key,
              "cv_score": stats["mean"].get(score_key), "cv_std": stats["std"].get(score_key),
              "mean": stats["mean"], "std": stats["std"], "wall_seconds": round(time.perf_counter() - start, 1),
              "folds": entries}  # fmt: skip
    write_json(Path(cv_dir) / "cv.json", result)
    return result


def _last_checkpoint(summary: dict[str, Any]) -> str | None:
    """Without validation (``limit_val_batches: 0``) there is no best checkpoint: the final
    model is tested, and its ``last.ckpt`` is the fold's model."""
    last = Path(summary.get("metrics_file", "")).parent / "checkpoints" / "last.ckpt"
    return str(last) if summary.get("metrics_file") and last.is_file() else None
