"""Run every course experiment's recipe and write docs/REPRODUCTION.md: the course's printed number
beside ours at the same setting, on this machine.

    python scripts/reproduce.py                         # every row, the course's full settings
    python scripts/reproduce.py --budget 2 --max_batches 50 --only 'airfoil_*'   # a quick look

The rows come from ``scripts/course_experiments.yaml`` (one entry per experiment: see its header);
a new lecture adds an entry and a recipe there, not code here. Each row's recipe runs through
``python -m zoo.fit`` in its own process; ours is read from the run's ``metrics.json`` (``test/...``)
or its last logged value (``metrics.csv``). ``--budget N`` caps every run at N epochs and
``--max_batches B`` at B batches per epoch and split: a row so shortened says so in the table.
Rows whose data is missing under ``--data_root``, or that need a GPU where there is none (unless
``--max_batches`` shortens them or ``--gpu_rows_on_cpu``), are not run: the table says why and gives
the command.
Results are kept per row in ``<out>.json``; a rerun runs only rows that are missing there or whose
entry, recipe or budget changed (``--force`` reruns them all).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import fnmatch
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoo.run.errors import run_command  # noqa: E402
from zoo.run.io import atomic_write  # noqa: E402

REQUIRED = ("id", "lecture", "recipe", "setting", "course", "metric", "better", "data")


def load_registry(path: Path) -> list[dict]:
    """The entries of ``path``; a malformed one is an error naming the file and the entry."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of entries, one per course experiment")
    seen = set()
    for i, e in enumerate(entries, 1):
        name = e.get("id", "no id") if isinstance(e, dict) else repr(e)
        where = f"{path}: entry {i} ({name})"
        if not isinstance(e, dict):
            raise ValueError(f"{where}: expected a mapping")
        missing = [k for k in REQUIRED if k not in e]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        if e["better"] not in ("higher", "lower"):
            raise ValueError(f"{where}: better must be higher or lower, got {e['better']!r}")
        course = e["course"] if isinstance(e["course"], list) else [e["course"]]
        numbers = 0 < len(course) <= 2 and all(isinstance(c, (int, float)) for c in course)
        if e["course"] is not None and not numbers:
            raise ValueError(f"{where}: course must be a number, a [low, high] range or null, got {e['course']!r}")
        if e["id"] in seen:
            raise ValueError(f"{where}: id {e['id']!r} is used twice")
        seen.add(e["id"])
    return entries


def machine() -> tuple[str, str]:
    """This machine in full (for the page's header) and in a few words (for each row)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    full = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, {gpu or 'no GPU'}"
    return f"{full}, torch {torch.__version__}", gpu or f"{os.cpu_count()} CPU cores"


def plan(entry: dict, args: argparse.Namespace, has_gpu: bool) -> tuple[list[str], list[str], str | None]:
    """The zoo.fit arguments for ``entry``, what shortens it, and why it cannot run here (or None)."""
    recipe = ROOT / entry["recipe"]
    fit = ["--config", entry["recipe"], "--name", entry["id"]]
    if entry["data"]:
        fit += ["--data.init_args.data_dir", str(Path(args.data_root) / entry["data"])]
    fit += [str(a) for a in entry.get("args", [])]
    if not recipe.is_file():
        return fit, [], f"recipe {entry['recipe']} is missing"
    if entry["data"] and not (ROOT / args.data_root / entry["data"]).is_dir():
        return fit, [], f"needs data: {entry['data']} under --data_root {args.data_root}"
    trainer = (yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}).get("trainer") or {}
    short, epochs = [], int(trainer.get("max_epochs") or 1000)
    if args.budget and args.budget < epochs and not trainer.get("max_steps"):  # a step-limited run is left whole
        fit += ["--trainer.max_epochs", str(args.budget)]
        if int(trainer.get("check_val_every_n_epoch") or 1) > args.budget:
            fit += ["--trainer.check_val_every_n_epoch", str(args.budget)]
        short.append(f"{args.budget} of {epochs} epochs")
    if args.max_batches:
        for split in ("train", "val", "test"):
            fit += [f"--trainer.limit_{split}_batches", str(args.max_batches)]
        short.append(f"at most {args.max_batches} batches per epoch and split")
    if entry.get("gpu") and not has_gpu and not (args.max_batches or args.gpu_rows_on_cpu):
        return fit, short, "needs a GPU at the course's setting (or --gpu_rows_on_cpu, hours each)"
    return fit, short, None


def fingerprint(entry: dict) -> str:
    """Changes when the row's entry or its recipe's text does (not with the machine's paths)."""
    recipe = ROOT / entry["recipe"]
    text = recipe.read_text(encoding="utf-8") if recipe.is_file() else ""
    return hashlib.sha256(json.dumps([entry, text], sort_keys=True).encode()).hexdigest()[:16]


def read_ours(run_dir: Path, metric: str) -> float:
    """``test/...`` from metrics.json; any other metric is its last value in metrics.csv."""
    if metric.startswith("test/"):
        test = json.loads((run_dir / "metrics.json").read_text())["test"]
        if metric not in test:
            raise ValueError(f"{run_dir}/metrics.json: no {metric} (it has {', '.join(test)})")
        return float(test[metric])
    with open(run_dir / "metrics.csv", newline="") as f:
        values = [row[metric] for row in csv.DictReader(f) if row.get(metric)]
    if not values:
        raise ValueError(f"{run_dir}/metrics.csv: {metric} was never logged")
    return float(values[-1])


def run_row(entry: dict, fit: list[str], runs: Path) -> dict:
    cmd = [sys.executable, "-m", "zoo.fit", *fit, "--trainer.default_root_dir", str(runs),
           "--trainer.enable_progress_bar", "false"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    result = {"wall_s": round(wall, 1), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {**result, "error": f"zoo.fit failed: {last[:200]}"}
    done = sorted((runs / entry["id"]).glob("version_*/metrics.json"), key=lambda p: p.stat().st_mtime)
    if not done:
        return {**result, "error": f"zoo.fit wrote no {runs / entry['id']}/version_*/metrics.json"}
    try:
        ours = read_ours(done[-1].parent, entry["metric"]) * float(entry.get("scale", 1.0))
    except (ValueError, KeyError) as e:  # the registry names a metric this run does not log
        return {**result, "error": str(e)}
    return {**result, "ours": ours}


def as_good(entry: dict, ours: float | None) -> str:
    """Whether ours, to the 3 significant digits the course prints, is at least as good as the
    course's number (the worse end of a range it printed from two runs)."""
    if ours is None or entry["course"] is None:
        return "-"
    course = entry["course"] if isinstance(entry["course"], list) else [entry["course"]]
    ours = float(f"{ours:.3g}")
    ok = ours >= min(course) if entry["better"] == "higher" else ours <= max(course)
    return "yes" if ok else "no"


def fmt(x: float | list | None) -> str:
    if isinstance(x, list):
        return "-".join(fmt(v) for v in x)
    if x is None:
        return "-"
    return f"{x:.2e}" if 0 < abs(x) < 1e-3 else f"{x:.4g}" if abs(x) >= 100 else f"{x:.3f}"


def render(entries: list[dict], cache: dict, commands: dict[str, str], command: str, here: str) -> str:
    """The page: one row per entry, from its cached result (or why it has none)."""
    lines = [
        "# Reproducing the course's experiments",
        "",
        "Generated by `scripts/reproduce.py` from `scripts/course_experiments.yaml`; do not edit by hand.",
        f"Last command: `{command}`. This machine: {here}.",
        "",
        "*course*: the number the course prints (its source is in the registry); *ours*: the same",
        "setting through `python -m zoo.fit`, on the course's scale; *ok*: ours at least as good.",
        "A row marked **shortened** ran with fewer epochs or batches than the course's setting.",
        "",
        "| lecture | recipe | course setting | metric | course | ours | ok | wall s | machine | date | notes |",
        "|---|---|---|---|---:|---:|:-:|---:|---|---|---|",
    ]
    for e in entries:
        r = cache.get(e["id"], {})
        notes = [f"**shortened**: {', '.join(r['shortened'])}"] if r.get("shortened") else []
        if r and r.get("key") != fingerprint(e):
            notes.append("**stale**: the entry or recipe changed since this result")
        if r.get("skipped") or r.get("error"):
            notes.append(f"{r.get('skipped') or r.get('error')}; run: `{commands[e['id']]}`")
        elif not r:
            notes.append(f"not run yet; run: `{commands[e['id']]}`")
        if e.get("note"):
            notes.append(e["note"])
        metric = e["metric"] + (f" x {e['scale']}" if e.get("scale") else "")
        wall = f"{r['wall_s']:.0f}" if "wall_s" in r else "-"
        cells = [e["lecture"], f"`{Path(e['recipe']).name}`", e["setting"], metric, fmt(e["course"]),
                 fmt(r.get("ours")), as_good(e, r.get("ours")), wall, r.get("machine", "-"),
                 r.get("date", "-"), "; ".join(notes)]  # fmt: skip
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="Run the course's experiments and write docs/REPRODUCTION.md.")
    p.add_argument("--registry", default=str(ROOT / "scripts" / "course_experiments.yaml"))
    p.add_argument("--out", default=str(ROOT / "docs" / "REPRODUCTION.md"))
    p.add_argument("--data_root", default="../shared/data", help="folder of the data sets (relative: to the repo)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "reproduce"), help="where the runs' folders go")
    p.add_argument("--budget", type=int, default=None, help="cap every run at this many epochs (marked)")
    p.add_argument("--max_batches", type=int, default=None, help="cap batches per epoch and split (marked)")
    p.add_argument("--only", nargs="+", default=["*"], help="run only rows whose id matches one of these globs")
    p.add_argument("--force", action="store_true", help="rerun rows even when their cached result is current")
    p.add_argument("--gpu_rows_on_cpu", action="store_true", help="run rows marked gpu on the CPU too (slow)")
    args = p.parse_args(argv)
    for name in ("budget", "max_batches"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    import torch

    entries, out = load_registry(Path(args.registry)), Path(args.out)
    cache_path = out.with_suffix(".json")
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    (here, short_here), has_gpu = machine(), torch.cuda.is_available()
    for e in entries:
        if not any(fnmatch.fnmatch(e["id"], pattern) for pattern in args.only):
            continue
        fit, short, why = plan(e, args, has_gpu)
        key, cached = fingerprint(e), cache.get(e["id"], {})
        command = "python -m zoo.fit " + shlex.join(fit)
        if not args.force and cached.get("key") == key and cached.get("shortened") == short and "ours" in cached:
            continue
        if why:
            cache[e["id"]] = {"key": key, "skipped": why, "command": command, "shortened": short}
            print(f"{e['id']}: {why}", flush=True)
            continue
        print(f"{e['id']}: {command}" + (f"  [shortened: {', '.join(short)}]" if short else ""), flush=True)
        result = run_row(e, fit, Path(args.runs))
        cache[e["id"]] = {"key": key, "command": command, "shortened": short, "machine": short_here, **result}
        print(f"{e['id']}: ours {fmt(result.get('ours'))} ({result.get('error', 'ok')}, {result['wall_s']} s)")
        with atomic_write(cache_path) as f:  # after every row: an interrupted run keeps what it did
            json.dump(cache, f, indent=1, sort_keys=True)
    with atomic_write(cache_path) as f:
        json.dump(cache, f, indent=1, sort_keys=True)
    full = argparse.Namespace(**{**vars(args), "budget": None, "max_batches": None})  # the course's setting
    commands = {e["id"]: "python -m zoo.fit " + shlex.join(plan(e, full, has_gpu)[0]) for e in entries}
    invoked = "python scripts/reproduce.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    with atomic_write(out) as f:
        f.write(render(entries, cache, commands, invoked, here))
    print(f"wrote {out}")
    return cache


if __name__ == "__main__":
    run_command(main)
