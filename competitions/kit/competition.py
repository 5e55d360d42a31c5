"""What a competition defines (its files, checks, metric and submission format) and the three
stages every competition runs through the same code: ``prepare``, ``fit`` and ``predict``.

``prepare`` finds (or fetches) the raw files, checks them all and writes a small index into
the work folder (``prepared.json``, ``train_index.csv``, ``test_index.csv``) plus the saved
``folds.csv``. ``fit`` trains one ``zoo.fit`` run per fold from the competition's recipe (same
Trainer, same recipe; only the fold differs) through ``zoo.run.folds.cross_validate``, the
driver of ``zoo.fit --folds`` too, which scores each fold's model on its held-out rows (its
final ``last.ckpt`` when the recipe does not validate, as every shipped one; else its best
checkpoint) and writes ``cv.json`` (its keys: see ``cross_validate``); ``fit`` then appends the
CV score to ``scores.csv``. ``predict`` rebuilds each fold's task
and data module from its checkpoint through ``zoo.core.checkpoint`` (the data module's fitted
state, e.g. the class names or the house prices preprocessing, travels in the checkpoint),
predicts the test rows with optional flip TTA, averages the folds and writes
``submission.csv`` only after it passed the check.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from competitions.kit.fetch import fetch
from competitions.kit.scorelog import append_score
from competitions.kit.submission import read_sample, write_submission
from zoo.core.errors import ConfigError
from zoo.core.io import atomic_write, write_json
from zoo.run.folds import cross_validate, load_or_make_folds


@dataclass
class Prepared:
    """The checked raw data. ``train`` has ``id`` and ``label`` (and ``path`` for images);
    ``test`` has ``id`` (and ``path``) in the submission's row order."""

    train: pd.DataFrame
    test: pd.DataFrame
    header: list[str]
    classes: list[str] | None = None
    notes: list[str] = field(default_factory=list)


class Competition:
    """One Kaggle competition; subclasses fill in the class attributes and ``read``."""

    slug: str  # Kaggle's name, as in kaggle.com/competitions/<slug>
    metric: str  # what the leaderboard scores, e.g. "log-RMSE"
    score_key: str  # the key of zoo.fit's test metrics that measures it on a held-out fold
    stratify: bool = True  # stratified folds (classification) or plain shuffled ones
    #: role -> the names the file may have (the first is Kaggle's); all roles are required
    files: dict[str, tuple[str, ...]] = {}
    folders: tuple[str, ...] = ()  # required image folders
    sample_names: tuple[str, ...] = ("sample_submission.csv",)
    header: list[str] = []  # the submission's header when no sample submission exists

    def read(self, data_dir: Path, found: dict[str, Path], sample: Path | None) -> Prepared:
        """Check the raw files and return them as a ``Prepared``; raise ``DataError`` listing
        every problem found."""
        raise NotImplementedError

    def fold_args(self, work_dir: Path, fold: int) -> list[str]:
        """The ``zoo.fit`` arguments that point the recipe's data module (which reads the raw
        files itself) at the prepared data folder and ``fold`` of the saved folds."""
        folds = str((work_dir / "folds.csv").resolve())
        return ["--data.init_args.data_dir", load_prepared(work_dir)["data_dir"],
                "--data.init_args.folds_file", folds, "--data.init_args.fold", str(fold)]  # fmt: skip

    def submission(
        self, ids: list[str], preds: np.ndarray, classes: list[str] | None, header: list[str]
    ) -> pd.DataFrame:
        """The submission table from the fold-averaged predictions (class probabilities, or
        the task's raw outputs), rows in ``ids`` order and columns named as ``header``."""
        assert classes is not None, "a classification submission needs the class names"
        return pd.DataFrame({header[0]: ids, header[1]: np.asarray(classes)[preds.argmax(1)]})

    # -- stage 1 ---------------------------------------------------------------------------
    def locate(self, data_dir: Path) -> tuple[dict[str, Path], Path | None]:
        """Each role's file and the sample submission (``None`` when there is none); files that
        are missing are fetched from Kaggle, or the error says what to place where."""
        found = {role: _first(data_dir, names) for role, names in self.files.items()}
        missing = [names[0] for role, names in self.files.items() if found[role] is None]
        missing += [f"{d}/" for d in self.folders if not (data_dir / d).is_dir()]
        if missing:
            fetch(self.slug, data_dir, missing)
            found = {role: _first(data_dir, names) for role, names in self.files.items()}
        return found, _first(data_dir, self.sample_names)  # type: ignore[return-value]

    def prepare(self, data_dir: str | Path, work_dir: str | Path, config: dict[str, Any]) -> Prepared:
        data_dir, work_dir = Path(data_dir).expanduser().resolve(), Path(work_dir)
        found, sample = self.locate(data_dir)
        prepared = self.read(data_dir, found, sample)
        header = prepared.header
        if sample is None:
            prepared.notes.append(f"no {self.sample_names[0]} in {data_dir}: the submission will be checked "
                                  f"against the {len(prepared.test)} test ids and the header {header}")  # fmt: skip
        cv = config.get("cv", {})
        labels = prepared.train["label"].tolist() if self.stratify else None
        load_or_make_folds(work_dir / "folds.csv", prepared.train["id"].tolist(), cv.get("folds", 5),
                           cv.get("seed", 0), labels)  # fmt: skip
        _write_csv(work_dir / "train_index.csv", prepared.train)
        _write_csv(work_dir / "test_index.csv", prepared.test)
        info = {"competition": self.slug, "data_dir": str(data_dir), "sample": str(sample) if sample else None,
                "header": header, "classes": prepared.classes, "notes": prepared.notes}  # fmt: skip
        write_json(work_dir / "prepared.json", info)
        return prepared

    def check(self, stage: str, data_dir: str | Path, work_dir: str | Path, config: dict[str, Any],
              overrides: list[str], output: str | Path | None = None) -> str:  # fmt: skip
        """``--dry_run``: what ``stage`` would start from, checked without training or writing
        (nothing fetched); ``all`` checks prepare's inputs, which the later stages are made from."""
        from zoo.cli.fit import main as zoo_fit  # here: LightningCLI is slow to import, prepare needs none of it

        work_dir = Path(work_dir)
        if stage in ("prepare", "all"):
            data_dir = Path(data_dir).expanduser().resolve()
            found = {role: _first(data_dir, names) for role, names in self.files.items()}
            missing = [names[0] for role, names in self.files.items() if found[role] is None]
            missing += [f"{d}/" for d in self.folders if not (data_dir / d).is_dir()]
            if missing:
                raise FileNotFoundError(f"{data_dir}: no {', '.join(missing)} (Kaggle's {self.slug} files; "
                                        "prepare fetches them with a Kaggle token)")  # fmt: skip
            prepared = self.read(data_dir, found, _first(data_dir, self.sample_names))
            return f"{len(prepared.train)} training and {len(prepared.test)} test rows in {data_dir}"
        if stage == "fit":
            load_prepared(work_dir)
            if not (work_dir / "folds.csv").is_file():
                raise FileNotFoundError(f"{work_dir / 'folds.csv'} not found: run the prepare stage first")
            with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
                recipe = Path(tmp) / "recipe.yaml"
                recipe.write_text(yaml.safe_dump(config["fit"], sort_keys=False))
                with contextlib.suppress(SystemExit):  # --print_config exits once it printed
                    zoo_fit(["--config", str(recipe), *self.fold_args(work_dir, 0), *overrides, "--print_config"],
                            one_line_errors=True)  # fmt: skip
            return f"the recipe and the zoo.fit options resolve; folds in {work_dir / 'folds.csv'}"
        _, cv_result = self.fitted(work_dir, output)
        missing = [f["checkpoint"] for f in cv_result["folds"] if not Path(f["checkpoint"]).is_file()]
        if missing:
            raise FileNotFoundError(f"{work_dir / 'cv.json'} names missing checkpoints: {', '.join(missing)}")
        return f"{len(cv_result['folds'])} fold checkpoints in {work_dir}"

    # -- stage 2 ---------------------------------------------------------------------------
    def fit(self, work_dir: str | Path, config: dict[str, Any], config_path: str, overrides: list[str]) -> dict:
        from zoo.cli.fit import main as zoo_fit  # here: LightningCLI is slow to import, prepare needs none of it

        work_dir = Path(work_dir)
        load_prepared(work_dir)
        saved = sorted(set(pd.read_csv(work_dir / "folds.csv")["fold"].tolist()))
        folds = config.get("cv", {}).get("train_folds") or saved
        unknown = [k for k in folds if k not in saved]
        if unknown:  # before anything is trained or written
            raise ConfigError(f"--train_folds (cv.train_folds): no fold {', '.join(map(str, unknown))} in "
                             f"{work_dir / 'folds.csv'}, which holds folds {', '.join(map(str, saved))}")  # fmt: skip
        recipe = work_dir / "recipe.yaml"
        with atomic_write(recipe) as f:
            yaml.safe_dump(config["fit"], f, sort_keys=False)

        def args_of_fold(k: int) -> list[str]:
            return ["--config", str(recipe), *self.fold_args(work_dir, k),
                    "--trainer.default_root_dir", str(work_dir), "--name", f"fold{k}", *overrides]  # fmt: skip

        cv_result = cross_validate(lambda args: zoo_fit(args, one_line_errors=True), args_of_fold, folds, work_dir,
                                   name=self.slug, folds_file=work_dir / "folds.csv", score_key=self.score_key,
                                   require_models=True)  # fmt: skip
        scores = [f["score"] for f in cv_result["folds"]]
        append_score(work_dir / "scores.csv", competition=self.slug, stage="fit", metric=self.metric,
                     cv_score=f"{cv_result['cv_score']:.5f}", fold_scores=" ".join(f"{s:.5f}" for s in scores),
                     wall_seconds=cv_result["wall_seconds"], config=_describe(config_path, config),
                     overrides=" ".join(overrides), output=str(work_dir / "cv.json"))  # fmt: skip
        return cv_result

    # -- stage 3 ---------------------------------------------------------------------------
    @staticmethod
    def fitted(work_dir: Path, output: str | Path | None) -> tuple[dict, dict]:
        """What predict starts from: prepare's record and the fit stage's ``cv.json`` (with each
        fold's checkpoint); a folder given as ``--output`` is refused now, not after predicting."""
        if output is not None and Path(output).is_dir():
            raise IsADirectoryError(f"--output {output}: is a folder; expected the submission's file name")
        info = load_prepared(work_dir)
        cv_file = work_dir / "cv.json"
        if not cv_file.is_file():
            raise FileNotFoundError(f"{cv_file} not found: run the fit stage first")
        return info, json.loads(cv_file.read_text())

    def predict(self, work_dir: str | Path, config: dict[str, Any], config_path: str,
                tta: bool | None = None, output: str | Path | None = None) -> Path:  # fmt: skip
        from competitions.kit.predict import predict_folds  # here: torch and Lightning, only for predict

        work_dir = Path(work_dir)
        info, cv_result = self.fitted(work_dir, output)
        start = time.perf_counter()
        tta = config.get("predict", {}).get("tta", False) if tta is None else tta
        ids, preds, classes = predict_folds([f["checkpoint"] for f in cv_result["folds"]], tta)
        test_ids = pd.read_csv(work_dir / "test_index.csv", dtype={"id": str})["id"].tolist()
        if ids != test_ids:
            raise ConfigError("the data module predicted other rows than prepare's test index; rerun prepare")
        header, expected_ids = info["header"], test_ids
        if info["sample"]:
            header, expected_ids = read_sample(info["sample"])
        table = self.submission(ids, preds, classes, header)
        path = write_submission(table, output or work_dir / "submission.csv", header, expected_ids)
        append_score(work_dir / "scores.csv", competition=self.slug, stage="predict", metric=self.metric,
                     cv_score=f"{cv_result['cv_score']:.5f}", wall_seconds=round(time.perf_counter() - start, 1),
                     config=_describe(config_path, config), overrides=f"tta={tta}", output=str(path))  # fmt: skip
        return path


def load_prepared(work_dir: Path) -> dict[str, Any]:
    path = work_dir / "prepared.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the prepare stage first (with this --work_dir)")
    return json.loads(path.read_text())


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _write_csv(path: Path, table: pd.DataFrame) -> None:
    with atomic_write(path, newline="") as f:
        table.to_csv(f, index=False)


def _describe(config_path: str, config: dict[str, Any]) -> str:
    """The config file and a short hash of its content, so a score row names its recipe."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    return f"{config_path}#{digest}"
