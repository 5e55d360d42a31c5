"""``python -m competitions <slug> <stage> [options] [-- zoo.fit options]``.

Stages: ``prepare`` (find or fetch the raw files, check them, save the folds), ``fit`` (one
``zoo.fit`` run per fold; options after ``--`` go to every run, e.g.
``-- --trainer.max_epochs 3``), ``predict`` (fold-averaged predictions -> checked
``submission.csv``) and ``all`` (the three in a row). Each competition lives in
``competitions/<slug>/`` with its ``config.yaml`` and README.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

import competitions
from zoo.core.errors import ConfigError
from zoo.core.io import read_yaml
from zoo.core.options import number
from zoo.run.errors import run_command

STAGES = ("prepare", "fit", "predict", "all")


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(competitions.__path__) if m.ispkg and m.name != "kit")


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(prog="python -m competitions", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("competition", choices=available())
    p.add_argument("stage", choices=STAGES)
    p.add_argument("--data_dir", help="folder with the raw Kaggle files (prepare); default data/<competition>")
    p.add_argument("--work_dir", help="folds, runs, checkpoints, submission; default runs/competitions/<competition>")
    p.add_argument("--config", help="default competitions/<competition>/config.yaml")
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average with horizontally flipped test images (default: the config's predict.tta)",
    )
    p.add_argument("--output", help="submission path; default <work_dir>/submission.csv")
    p.add_argument("--train_folds", type=lambda s: [number(int, 0)(k) for k in s.split(",")],
                   help="fit only these folds, e.g. 0 or 0,1 (default: cv.train_folds, else all)")  # fmt: skip
    p.add_argument("--dry_run", action="store_true",
                   help="check the stage's inputs, then stop: nothing trained or written")  # fmt: skip
    return p.parse_args(argv), extra


def main(argv: list[str] | None = None) -> object:
    args, extra = parse(sys.argv[1:] if argv is None else argv)
    comp = importlib.import_module(f"competitions.{args.competition}").COMPETITION
    config_path = args.config or str(Path(competitions.__file__).parent / args.competition / "config.yaml")
    config = read_yaml(config_path)
    if not isinstance(config, dict) or not isinstance(config.get("fit"), dict):
        raise ConfigError(f"{config_path}: expected a competition config, a mapping with a fit section (the recipe)")
    if args.train_folds is not None:
        config.setdefault("cv", {})["train_folds"] = args.train_folds
    work_dir = Path(args.work_dir or f"runs/competitions/{args.competition}")
    if args.dry_run:
        data_dir = args.data_dir or f"data/{args.competition}"
        return print(f"dry run: {args.stage}: {comp.check(args.stage, data_dir, work_dir, config, extra, args.output)}")
    result: object = None
    stages = ("prepare", "fit", "predict") if args.stage == "all" else (args.stage,)
    for stage in stages:
        start = time.perf_counter()
        if stage == "prepare":
            prepared = comp.prepare(args.data_dir or f"data/{args.competition}", work_dir, config)
            result = prepared
            print(f"prepare: {len(prepared.train)} training rows, {len(prepared.test)} test rows"
                  + (f", {len(prepared.classes)} classes" if prepared.classes else ""))  # fmt: skip
            for note in prepared.notes:
                print(f"prepare: note: {note}")
        elif stage == "fit":
            result = cv = comp.fit(work_dir, config, config_path, extra)
            scores = ", ".join(f"{f['score']:.4f}" for f in cv["folds"])
            print(f"fit: {comp.metric} per fold {scores}; CV {cv['cv_score']:.4f}")
        else:
            result = path = comp.predict(work_dir, config, config_path, args.tta, args.output)
            print(f"predict: wrote {path} (checked)")
        print(f"{stage}: {time.perf_counter() - start:.1f} s")
    return result


if __name__ == "__main__":
    run_command(main)
