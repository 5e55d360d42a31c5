"""Run every course experiment and write docs/REPRODUCTION.md: the course's printed number, the
course's own code run here (``--course``) and ours at the same setting, with their curves.

    python scripts/reproduce.py                         # every CPU row at the course's full setting
    python scripts/reproduce.py --course --d2l_path /work/peer/d2l103   # and the course's own code
    python scripts/reproduce.py --budget 2 --max_batches 50 --only 'airfoil_*'   # a quick look
    python scripts/reproduce.py --gpu                   # the GPU rows (scripts/gpu_rows.sh)

The rows come from ``scripts/course_experiments.yaml`` (one entry per experiment: see its header);
a new lecture adds an entry and a recipe there, not code here. A ``recipe`` row runs
``python -m zoo.fit`` in its own process and reads ours from the run's ``metrics.json``
(``test/...``) or its last logged value (``metrics.csv``); a ``check`` row calls a function of
``scripts/course_checks.py`` (exact tensors, translations of a trained row's checkpoint, ...).

Each row runs with seed 0 first, cheapest rows first; then rows whose run took at most two
minutes run seeds 1 and 2 (``--seeds``, or the entry's own ``seeds``), so the table shows mean +-
spread. ``--course`` does the
same with the course's own ``d2l`` code through ``scripts/course_side.py`` (its ``run(row_id, seed,
data_root)``), whose record of every run (``docs/reproduction/course_here/<row>-<seed>.json``) the
table reads, whoever wrote it. Every result is cached per row and seed in ``<out>.json``, written
atomically after each run: an interrupted command loses at most the run in progress (a ``zoo.fit``
child dies with it, even on ``kill -9``), and a rerun runs only what is missing or (ours) whose
entry or recipe changed (``--force`` reruns).
``--budget N`` caps every run at N epochs and ``--max_batches B`` at B batches per epoch and split:
a row so shortened says so.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import datetime as dt
import fnmatch
import hashlib
import importlib.util
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoo.core.errors import ConfigError  # noqa: E402
from zoo.core.io import atomic_write, save_figure, subplots, write_json  # noqa: E402
from zoo.run.errors import run_command  # noqa: E402

REQUIRED = ("id", "lecture", "setting", "course", "metric", "better", "data")
#: what decides whether a row reruns: not its lecture, notes or printed number
RUN_FIELDS = ("recipe", "check", "args", "metric", "scale", "data", "needs", "gpu", "gpu_args", "check_args", "devices")
LATER_FIELDS = ("reduce",)  # count only where an entry sets them: the other rows' results stay current
SLOW_S = 120  # a run longer than this gets one seed
#: what --gpu adds to a GPU row (and the row's own gpu_args): bf16 autocast, channels-last
GPU_ARGS = ["--trainer.precision", "bf16-mixed", "--model.init_args.channels_last", "true",
            "--data.init_args.pin_memory", "true"]  # fmt: skip


def load_registry(path: Path) -> list[dict]:
    """The entries of ``path``; a malformed one is an error naming the file and the entry."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a list of entries, one per course experiment")
    seen = set()
    for i, e in enumerate(entries, 1):
        name = e.get("id", "no id") if isinstance(e, dict) else repr(e)
        where = f"{path}: entry {i} ({name})"
        if not isinstance(e, dict):
            raise ConfigError(f"{where}: expected a mapping")
        missing = [k for k in REQUIRED if k not in e]
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(missing)}")
        if ("recipe" in e) == ("check" in e):
            raise ConfigError(
                f"{where}: needs exactly one of recipe (a zoo.fit run) or check (scripts/course_checks.py)"
            )
        if e["better"] not in ("higher", "lower"):
            raise ConfigError(f"{where}: better must be higher or lower, got {e['better']!r}")
        course = e["course"] if isinstance(e["course"], list) else [e["course"]]
        numbers = 0 < len(course) <= 2 and all(isinstance(c, (int, float)) for c in course)
        if e["course"] is not None and not numbers:
            raise ConfigError(f"{where}: course must be a number, a [low, high] range or null, got {e['course']!r}")
        if e["id"] in seen:
            raise ConfigError(f"{where}: id {e['id']!r} is used twice")
        if e.get("needs") and e["needs"] not in seen:
            raise ConfigError(f"{where}: needs {e['needs']!r}, which must be an entry above it")
        seen.add(e["id"])
    return entries


def machine() -> tuple[str, str]:
    """This machine in full (for the page's header) and in a few words (for each row)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    threads = os.environ.get("OMP_NUM_THREADS")
    cores = f"{os.cpu_count()} CPU cores" + (f" ({threads} thread{'s' * (threads != '1')})" if threads else "")
    full = f"{platform.processor() or platform.machine()}, {cores}, {gpu or 'no GPU'}"
    return f"{full}, torch {torch.__version__}", gpu or cores


def plan(
    entry: dict, args: argparse.Namespace, has_gpu: bool, seed: int = 0
) -> tuple[list[str], list[str], str | None]:
    """The zoo.fit arguments for ``entry`` and ``seed``, what shortens it, and why it cannot run here (or None)."""
    data_root = Path(args.data_root)
    data_ok = not entry["data"] or (data_root if data_root.is_absolute() else ROOT / data_root).joinpath(
        entry["data"]).is_dir()  # fmt: skip
    if "check" in entry:
        return [], [], None if data_ok else f"needs data: {entry['data']} under --data_root {args.data_root}"
    recipe = ROOT / entry["recipe"]
    name = entry["id"] if seed == 0 else f"{entry['id']}_seed{seed}"
    fit = ["--config", entry["recipe"], "--name", name]
    if entry["data"]:
        fit += ["--data.init_args.data_dir", str(data_root / entry["data"])]
    fit += [str(a) for a in entry.get("args", [])]
    if not recipe.is_file():
        return fit, [], f"recipe {entry['recipe']} is missing"
    config = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
    if seed:
        fit += ["--seed_everything", str(int(config.get("seed_everything") or 0) + seed)]
    if entry.get("gpu") and args.gpu:
        fit += [*GPU_ARGS, "--data.init_args.num_workers", str(args.workers), *map(str, entry.get("gpu_args", []))]
        if args.max_batches:  # the dry run: one small batch a split
            fit += ["--data.init_args.batch_size", "2"]
    if not data_ok:
        return fit, [], f"needs data: {entry['data']} under --data_root {args.data_root}"
    trainer = config.get("trainer") or {}
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
    if entry.get("devices", 1) > 1:
        import torch

        if torch.cuda.device_count() < entry["devices"]:
            return fit, short, f"needs {entry['devices']} GPUs (this machine has {torch.cuda.device_count()})"
    if entry.get("gpu") and not has_gpu and not (args.max_batches or args.gpu_rows_on_cpu):
        return fit, short, "needs a GPU at the course's setting: run scripts/gpu_rows.sh there"
    return fit, short, None


def fingerprint(entry: dict) -> str:
    """Changes when what the row runs does (its run fields or its recipe's settings), not with its
    lecture, notes, printed number, the recipe's comments or the machine's paths."""
    recipe = ROOT / entry["recipe"] if "recipe" in entry else None
    text = yaml.safe_load(recipe.read_text(encoding="utf-8")) if recipe and recipe.is_file() else ""
    fields = {k: entry.get(k) for k in RUN_FIELDS} | {k: entry[k] for k in LATER_FIELDS if k in entry}
    return hashlib.sha256(json.dumps([fields, text], sort_keys=True).encode()).hexdigest()[:16]


def read_metric(run_dir: Path, metric: str, reduce: str = "last") -> float:
    """``test/...`` from metrics.json; any other metric is its last value in metrics.csv, or with
    ``reduce="mean"`` the mean of its logged epochs."""
    if reduce not in ("last", "mean"):
        raise ConfigError(f"reduce must be last or mean, got {reduce!r}")
    if metric.startswith("test/"):
        test = json.loads((run_dir / "metrics.json").read_text())["test"]
        if metric not in test:
            raise ConfigError(f"{run_dir}/metrics.json: no {metric} (it has {', '.join(test)})")
        return float(test[metric])
    values = read_curves(run_dir).get(metric, ([], []))[1]
    if not values:
        raise ConfigError(f"{run_dir}/metrics.csv: {metric} was never logged")
    return statistics.fmean(values) if reduce == "mean" else values[-1]


def read_curves(run_dir: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Every epoch-level metric of a run's metrics.csv: the epochs (from 1) it was logged at, and its values."""
    curves: dict[str, tuple[list[int], list[float]]] = {}
    with open(run_dir / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k not in ("epoch", "step") and v and not k.endswith("_step"):
                    epochs, values = curves.setdefault(k.removesuffix("_epoch"), ([], []))
                    epochs.append(int(row["epoch"]) + 1)
                    values.append(float(v))
    return curves


def curve_metric(metric: str) -> str:
    """The per-epoch curve that shows a row's metric: its validation twin for a test metric."""
    return "val/" + metric.split("/", 1)[1] if metric.startswith("test/") else metric


def run_fit(entry: dict, fit: list[str], runs: Path, in_process: bool = False) -> dict:
    """One zoo.fit run in its own process (``in_process``: in this one, which saves the seconds of
    starting Python and importing Lightning per row: the dry run's way)."""
    fit = [*fit, "--trainer.default_root_dir", str(runs), "--trainer.enable_progress_bar", "false"]
    start = time.perf_counter()
    if in_process:
        from zoo.cli.fit import main as fit_main

        try:
            fit_main(fit)
            failed = None
        except Exception as e:  # noqa: BLE001 - the row records the failure; the table goes on
            failed = f"{type(e).__name__}: {e}"
    else:
        proc = subprocess.run([sys.executable, "-m", "zoo.fit", *fit], cwd=ROOT, capture_output=True, text=True,
                              preexec_fn=_die_with(os.getpid()) if sys.platform == "linux" else None)  # fmt: skip
        failed = None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    result = {"wall_s": round(time.perf_counter() - start, 1)}
    if failed:
        return {**result, "error": f"zoo.fit failed: {failed[:200]}"}
    name = fit[fit.index("--name") + 1]
    done = sorted((runs / name).glob("version_*/metrics.json"), key=lambda p: p.stat().st_mtime)
    if not done:
        return {**result, "error": f"zoo.fit wrote no {runs / name}/version_*/metrics.json"}
    run_dir = done[-1].parent
    try:
        value = read_metric(run_dir, entry["metric"], entry.get("reduce", "last")) * float(entry.get("scale", 1.0))
    except (ValueError, KeyError) as e:  # the registry names a metric this run does not log
        return {**result, "error": str(e)}
    epochs, values = read_curves(run_dir).get(curve_metric(entry["metric"]), ([], []))
    curve = [v * float(entry.get("scale", 1.0)) for v in values]
    return {**result, "value": value, "curve": curve, "curve_x": epochs, "run_dir": shown_path(run_dir)}


def _die_with(parent: int) -> Callable[[], None]:
    """What a child runs before ``zoo.fit`` starts (Linux): ask the kernel for SIGKILL when
    ``parent`` dies. Without it a ``kill -9`` of this command leaves its run training on unseen,
    beside the rerun that starts the same row again (and on the same GPU)."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before the fork: nothing to load in the child

    def arm() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return arm


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (the cache is committed)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def load_module(path: Path, what: str):
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path}: no such file")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # registered first, as import does: a dataclass in it looks itself up there
    spec.loader.exec_module(module)
    return module


def run_check(entry: dict, ours: dict, args: argparse.Namespace) -> dict:
    """A check row, in this process: ``CHECKS[name](entry, context)`` of scripts/course_checks.py."""
    checks = load_module(ROOT / "scripts" / "course_checks.py", "checks module").CHECKS
    context = {"data_root": Path(args.data_root), "out": Path(args.runs) / entry["id"]}
    if entry.get("needs"):
        needed = ours.get(entry["needs"], {}).get("seeds", {}).get("0", {})
        if "run_dir" not in needed or not (ROOT / needed["run_dir"]).is_dir():
            return {"wall_s": 0.0, "error": f"needs the run of row {entry['needs']} first"}
        context["run_dir"] = ROOT / needed["run_dir"]
    start = time.perf_counter()
    try:
        result = checks[entry["check"]](entry, context)
    except (ValueError, FileNotFoundError, KeyError) as e:
        return {"wall_s": round(time.perf_counter() - start, 1), "error": f"{type(e).__name__}: {e}"}
    return {"wall_s": round(time.perf_counter() - start, 1), **result}


#: one course-side run in a fresh process: argv = module path, row, seed, data_root, d2l_path ("" = its default)
COURSE_ONE = """
import importlib.util, json, pathlib, sys
spec = importlib.util.spec_from_file_location("course_side", sys.argv[1])
module = sys.modules["course_side"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
kwargs = {"d2l_path": sys.argv[5]} if sys.argv[5] else {}
result = module.run(sys.argv[2], int(sys.argv[3]), pathlib.Path(sys.argv[4]), **kwargs)
print("RESULT " + json.dumps(result))
"""


def run_course(row: str, seed: int, args: argparse.Namespace) -> dict:
    """One run of the course's own code (``run(row, seed, data_root)`` of ``--course_module``) in
    its own process: the ``d2l`` package sets global state (threads, plots) of the process it runs in."""
    cmd = [sys.executable, "-c", COURSE_ONE, str(args.course_module), row, str(seed), str(args.data_root),
           args.d2l_path or ""]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = round(time.perf_counter() - start, 1)
    lines = [li for li in proc.stdout.splitlines() if li.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"wall_s": wall, "error": f"course side failed: {last[:200]}"}
    r = json.loads(lines[-1][len("RESULT ") :])
    write_json(Path(args.course_results) / f"{row}-{seed}.json", r)  # the course side's own record
    return course_result(r, wall)


def course_result(r: dict, wall: float | None = None) -> dict:
    """What the table keeps of one course-side result (``value``, ``wall_s``, ``curve``)."""
    threads = r.get("threads")
    machine = {"machine": f"{os.cpu_count()} CPU cores ({threads} thread{'s' * (threads != 1)})"} if threads else {}
    curve = list(r.get("curve") or [])
    x = list(r.get("curve_x") or []) if len(r.get("curve_x") or []) == len(curve) else []
    return {"value": float(r["value"]), "wall_s": float(r.get("wall_s", wall or 0.0)),
            "curve": curve, **({"curve_x": x} if x else {}), **machine}  # fmt: skip


def import_course_results(entries: list[dict], cache: dict, folder: Path) -> int:
    """The course side's files ``<row>-<seed>.json`` in ``folder`` (``course_side.write_result``'s
    record of each run), for the rows and seeds the cache lacks or holds another result of (the
    file is the record: a rerun of the course side replaces it); returns how many were taken."""
    taken = 0
    for e in entries:
        seeds = cache["course"].setdefault(e["id"], {"seeds": {}})["seeds"]
        for path in sorted(folder.glob(f"{e['id']}-*.json")) if folder.is_dir() else []:
            seed = path.stem[len(e["id"]) + 1 :]
            if not seed.isdigit():
                continue
            result = course_result(json.loads(path.read_text(encoding="utf-8")))
            if seeds.get(seed, {}).get("value") != result.get("value"):
                date = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d")
                seeds[seed] = {**result, "date": date, "source": shown_path(path)}
                taken += 1
    return taken


# -- judging ---------------------------------------------------------------------------------
def stats(seeds: dict) -> tuple[float, float, int] | None:
    """Mean, spread (the sample standard deviation; 0 for one run) and count of the runs' values."""
    values = [r["value"] for r in seeds.values() if r.get("value") is not None]
    if not values:
        return None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0), len(values)


def tolerance(entry: dict, ref: float) -> float:
    """The row's stated tolerance, else 0.01 for an accuracy-like (higher) number and 2% for a loss."""
    if "tol" in entry:
        return float(entry["tol"])
    return 0.01 if entry["better"] == "higher" else 0.02 * abs(ref)


def judge(entry: dict, ours: tuple | None, course_here: tuple | None) -> str:
    """ "yes" when ours (its mean) is inside the course-here band (mean +- max(2 spread, tolerance))
    or better; with no course-here runs, when it is within the tolerance of the printed number
    (of the worse end of a printed range) or better; "-" with neither."""
    if ours is None:
        return "-"
    if course_here is not None:
        mean, spread, _ = course_here
        width = max(2 * spread, tolerance(entry, mean))
        ok = ours[0] >= mean - width if entry["better"] == "higher" else ours[0] <= mean + width
    elif entry["course"] is not None:
        course = entry["course"] if isinstance(entry["course"], list) else [entry["course"]]
        worse = min(course) if entry["better"] == "higher" else max(course)
        ok = ours[0] >= worse - tolerance(entry, worse) if entry["better"] == "higher" else (
            ours[0] <= worse + tolerance(entry, worse))  # fmt: skip
    else:
        return "-"
    return "yes" if ok else "no"


def fmt(x: float | list | None) -> str:
    if isinstance(x, list):
        return "-".join(fmt(v) for v in x)
    if x is None:
        return "-"
    return f"{x:.2e}" if 0 < abs(x) < 1e-3 else f"{x:.4g}" if abs(x) >= 100 else f"{x:.3f}"


def fmt_stats(s: tuple | None) -> str:
    if s is None:
        return "-"
    mean, spread, n = s
    return fmt(mean) if n == 1 else f"{fmt(mean)} +- {fmt(spread)} ({n})"


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# -- the page --------------------------------------------------------------------------------
def plot_row(entry: dict, ours: dict, course: dict, path: Path) -> Path | None:
    """The row's metric per epoch: each of our seeds and each course-here run (<= 60 KB)."""
    def xy(r: dict) -> tuple[list[float], list[float]]:
        return r.get("curve_x") or list(range(1, len(r["curve"]) + 1)), r["curve"]

    lines, bands = [], []  # (label, x, curve, style, colour), (x, low, high, colour)
    for side, runs, style, colour in (("ours", ours, "-", "C0"), ("course here", course, "--", "C1")):
        runs = [(s, *xy(r)) for s, r in sorted(runs.items(), key=lambda kv: int(kv[0])) if r.get("curve")]
        if len(runs) > 3:  # the median and the range over the seeds (a line and a legend entry each is noise)
            n = min(len(c) for _, _, c in runs)
            per_epoch = [sorted(c[i] for _, _, c in runs) for i in range(n)]
            x = runs[0][1][:n]
            median = [v[len(v) // 2] for v in per_epoch]
            lines.append((f"{side}: median of {len(runs)} seeds", x, median, style, colour))
            bands.append((x, [v[0] for v in per_epoch], [v[-1] for v in per_epoch], colour))
        else:
            lines += [(f"{side}, seed {s}", x, c, style, None) for s, x, c in runs]
    if not lines:
        return None
    fig, ax = subplots(figsize=(4.2, 2.8), dpi=80)
    for label, x, curve, style, colour in lines:
        ax.plot(x, curve, style, label=label, linewidth=1, marker="o" if len(curve) < 3 else None, color=colour)
    for x, low, high, colour in bands:
        ax.fill_between(x, low, high, alpha=0.2, color=colour)
    if entry["course"] is not None:
        for c in entry["course"] if isinstance(entry["course"], list) else [entry["course"]]:
            ax.axhline(c, color="grey", linewidth=0.8, linestyle=":")
    ax.set_title(f"{entry['id']}: {curve_metric(entry['metric'])}", fontsize=9)
    ax.set_xlabel("epoch", fontsize=8)
    ax.tick_params(labelsize=7)
    if entry["better"] == "lower" and all(v > 0 for _, _, c, _, _ in lines for v in c):
        ax.set_yscale("log")
    ax.legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, path)


HEADER = """# Reproducing the course's experiments

Generated by `scripts/reproduce.py` from `scripts/course_experiments.yaml`; do not edit by hand.
Last command: `{command}` ({date}). This machine: {here}.
{whole_run}

*lecture*: the number and title of the course's lecture (`course-notes.md`); experiments no lecture
covers say which book section. *course (printed)*: the number the course prints (its source: the
*source* column). *course here*: the course's own code (`d2l` 1.0.3, `scripts/course_side.py`) run
on this machine and data, mean +- spread (the sample standard deviation, runs in brackets); *ours*:
the same setting through `python -m zoo.fit`, on the course's scale, likewise.
**ok** is "yes" when ours (its mean) lies inside the course-here band, mean +- max(2 x spread,
tolerance), or beyond it on the better side; where no course code ran here, when it is within the
tolerance of the printed number (the worse end of a printed range) or better. The tolerance is the
row's own where its note states one, else 0.01 for accuracies and 2% for losses and perplexities.
A row marked **shortened** ran with fewer epochs or batches than the course's setting.

Rows: {counts}.

| lecture | source | recipe | course setting | metric | course (printed) | course here | ours | ok | wall s \
| machine | date | curves | notes |
|---|---|---|---|---|---:|---:|---:|:-:|---:|---|---|---|---|
"""


def row_status(entry: dict, r: dict, ok: str) -> str:
    """The row's standing for the counts: yes, no, needs-GPU, needs-data, not run, error or no yardstick."""
    if ok in ("yes", "no"):
        return ok
    why = r.get("skipped", "")
    if "GPU" in why:
        return "needs-GPU"
    if why.startswith("needs data"):
        return "needs-data"
    if r.get("error"):
        return "error"
    return "no yardstick" if stats(r.get("seeds", {})) else "not run"


def render(entries: list[dict], cache: dict, commands: dict[str, str], command: str, here: str, out: Path) -> str:
    """The page: one row per entry, from its cached results (or why it has none)."""
    rows, counts = [], {}
    for e in entries:
        r, c = cache["ours"].get(e["id"], {}), cache["course"].get(e["id"], {})
        ours, course = stats(r.get("seeds", {})), stats(c.get("seeds", {}))
        ok = judge(e, ours, course)
        status = row_status(e, r, ok)
        counts[status] = counts.get(status, 0) + 1
        notes = [f"**shortened**: {', '.join(r['shortened'])}"] if r.get("shortened") else []
        if r and r.get("key") != fingerprint(e):
            notes.append("**stale**: the entry or recipe changed since this result")
        if r.get("skipped") or r.get("error"):
            notes.append(
                f"{r.get('skipped') or r.get('error')}" + (f"; run: `{commands[e['id']]}`" if commands[e["id"]] else "")
            )
        elif not r:
            notes.append("not run yet" + (f"; run: `{commands[e['id']]}`" if commands[e["id"]] else ""))
        if c.get("error"):
            notes.append(f"course side: {c['error']}")
        shown = [s["show"] for s in r.get("seeds", {}).values() if s.get("show")][:1]
        notes += [f"shows: {s}" for s in shown]
        if e.get("note"):
            notes.append(e["note"])
        png = out.parent / "reproduction" / f"{e['id']}.png"
        curves = f"[png](reproduction/{png.name})" if png.is_file() else "-"
        walls = [s["wall_s"] for s in r.get("seeds", {}).values() if "wall_s" in s]
        last = max(r.get("seeds", {}).values(), key=lambda s: s.get("date", ""), default={})
        metric = e["metric"] + (f" x {e['scale']}" if e.get("scale") else "")
        what = f"`{Path(e['recipe']).name}`" if "recipe" in e else f"check `{e['check']}`"
        cells = [e["lecture"], e.get("source", "-"), what,
                 e["setting"], metric, fmt(e["course"]), fmt_stats(course), fmt_stats(ours), ok,
                 f"{statistics.fmean(walls):.0f}" if walls else "-", last.get("machine", "-"), last.get("date", "-"),
                 curves, "; ".join(notes)]  # fmt: skip
        rows.append("| " + " | ".join(str(c).replace("|", "/").replace("\n", " ") for c in cells) + " |")
    order = ["yes", "no", "needs-GPU", "needs-data", "no yardstick", "error", "not run"]
    text = f"{len(entries)} in all: " + ", ".join(f"{counts[k]} {k}" for k in order if k in counts)
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    whole = cache.get("whole_run")
    whole_run = "Rows run one at a time; a row's wall s is the mean of its own runs. " + (
        f"The last run of every row, `{whole['command']}` ({whole['date']}), took {whole['wall_s'] / 60:.1f} min "
        f"for {whole['runs']} runs."
        if whole
        else "No run of the whole table is recorded yet."
    )
    head = HEADER.format(command=command, date=date, here=here, counts=text, whole_run=whole_run)
    return head + "\n".join(rows) + "\n"


# -- the run ---------------------------------------------------------------------------------
def load_cache(path: Path) -> dict:
    """``{"ours": {row: {...,"seeds": {seed: result}}}, "course": {row: {"seeds": ...}}}``; a file
    in the older flat layout (one result per row) becomes seed 0 of each row."""
    if not path.is_file():
        return {"ours": {}, "course": {}}
    data = json.loads(path.read_text())
    if "ours" in data and "course" in data:
        return data
    ours = {}
    for row, r in data.items():
        seed0 = {k: r[k] for k in ("wall_s", "date", "machine") if k in r}
        if "ours" in r:
            seed0["value"] = r["ours"]
        rest = {k: r[k] for k in ("key", "command", "shortened", "skipped", "error") if k in r}
        ours[row] = {**rest, "seeds": {"0": seed0} if "value" in seed0 else {}}
    return {"ours": ours, "course": {}}


def expected(entry: dict, results: dict) -> float:
    """A run's expected wall time: the mean of its runs so far, else the entry's expect_s, else a
    guess (5 s for a check, 5 minutes for a recipe)."""
    walls = [s["wall_s"] for s in results.get("seeds", {}).values() if "wall_s" in s]
    return statistics.fmean(walls) if walls else entry.get("expect_s", 5 if "check" in entry else 300)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="Run the course's experiments and write docs/REPRODUCTION.md.")
    p.add_argument("--registry", default=str(ROOT / "scripts" / "course_experiments.yaml"))
    p.add_argument("--out", default=str(ROOT / "docs" / "REPRODUCTION.md"))
    p.add_argument("--data_root", default="../shared/data", help="folder of the data sets (relative: to the repo)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "reproduce"), help="where the runs' folders go")
    p.add_argument("--budget", type=int, default=None, help="cap every run at this many epochs (marked)")
    p.add_argument("--max_batches", type=int, default=None, help="cap batches per epoch and split (marked)")
    p.add_argument("--only", nargs="+", default=["*"], help="run only rows whose id matches one of these globs")
    p.add_argument("--seeds", type=int, default=3, help=f"seeds for a row whose run takes <= {SLOW_S} s (else 1)")
    p.add_argument("--force", action="store_true", help="rerun rows even when their cached result is current")
    p.add_argument("--gpu", action="store_true", help="run only the GPU rows, with bf16, channels-last, the resize "
                   "on the GPU and --workers loader workers (scripts/gpu_rows.sh)")  # fmt: skip
    p.add_argument("--in_process", action="store_true", help="run zoo.fit in this process (a quicker start per row)")
    p.add_argument("--workers", type=int, default=8, help="data loader workers of a GPU row with --gpu")
    p.add_argument("--gpu_rows_on_cpu", action="store_true", help="run rows marked gpu on the CPU too (slow)")
    p.add_argument("--course", action="store_true", help="also run the course's own code for its rows")
    p.add_argument("--course_module", default=str(ROOT / "scripts" / "course_side.py"))
    p.add_argument("--course_results", default=str(ROOT / "docs" / "reproduction" / "course_here"),
                   help="the course side's record, one <row>-<seed>.json per run (read, and written by --course)")
    p.add_argument("--d2l_path", default=None, help="folder holding the d2l 1.0.3 package (course_side's default)")
    p.add_argument("--no_ours", action="store_true", help="run only the course side (with --course)")
    args = p.parse_args(argv)
    for name in ("budget", "max_batches", "seeds"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(args, name)}")
    import torch

    entries, out = load_registry(Path(args.registry)), Path(args.out)
    cache_path = out.with_suffix(".json")
    cache = load_cache(cache_path)
    for side in ("ours", "course"):  # rows the registry no longer has (renamed, split) leave the cache
        cache[side] = {k: v for k, v in cache[side].items() if k in {e["id"] for e in entries}}
    if not args.force:
        import_course_results(entries, cache, Path(args.course_results))
    (here, short_here), has_gpu = machine(), torch.cuda.is_available()
    course_rows = set(load_module(Path(args.course_module), "--course_module").ROWS) if args.course else set()
    invoked = "python scripts/reproduce.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    full = argparse.Namespace(**{**vars(args), "budget": None, "max_batches": None})  # the course's setting
    commands = {e["id"]: ("python -m zoo.fit " + shlex.join(plan(e, full, has_gpu)[0])) if "recipe" in e else ""
                for e in entries}  # fmt: skip

    def save(entry: dict | None = None) -> None:  # after every run: an interrupted command keeps what it did
        if not args.force:  # the course side may be running beside this command
            import_course_results(entries, cache, Path(args.course_results))
        write_json(cache_path, cache, sort_keys=True)
        for e in [entry] if entry is not None else selected:  # at the end: every row, with the course's curves
            png = out.parent / "reproduction" / f"{e['id']}.png"
            ours, course = (cache[side].get(e["id"], {}).get("seeds", {}) for side in ("ours", "course"))
            plot_row(e, ours, course, png)
        with atomic_write(out) as f:
            f.write(render(entries, cache, commands, invoked, here, out))

    selected = [e for e in entries if any(fnmatch.fnmatch(e["id"], pat) for pat in args.only)
                and (e.get("gpu") or not args.gpu)]  # fmt: skip
    todo = []  # (side, entry, seed): seed 0 of every row first, cheapest first, checks after what they need
    for e in selected:
        key, r = fingerprint(e), cache["ours"].setdefault(e["id"], {})
        fit, short, why = plan(e, args, has_gpu)
        if args.force or r.get("key") != key or r.get("shortened") != short:
            cache["ours"][e["id"]] = r = {"key": key, "shortened": short, "seeds": {}}
        r["command"] = commands[e["id"]] or f"python scripts/reproduce.py --only {e['id']}"
        r.pop("error", None)
        r.pop("skipped", None)
        if why:
            r["skipped"] = why
            print(f"{e['id']}: {why}", flush=True)
        elif not args.no_ours:
            todo.append(("ours", e, 0))
        if e["id"] in course_rows:  # the course's code does not change with our recipes: only --force reruns it
            if args.force:
                cache["course"][e["id"]] = {"seeds": {}}
            todo.append(("course", e, 0))
    todo.sort(key=lambda t: (bool(t[1].get("needs")), expected(t[1], cache[t[0]][t[1]["id"]])))

    def cached(side: str, e: dict, seed: int) -> dict | None:
        return cache[side][e["id"]]["seeds"].get(str(seed))

    total = sum(expected(e, cache[side][e["id"]]) for side, e, seed in todo if not cached(side, e, seed))
    start, done = time.perf_counter(), 0
    while todo:
        side, e, seed = todo.pop(0)
        results = cache[side][e["id"]]
        result = cached(side, e, seed)
        if result is None:
            done += 1
            label = f"{e['id']} ({'course here' if side == 'course' else 'ours'}, seed {seed})"
            print(f"[{done}] {label}: expected {fmt_time(expected(e, results))}; elapsed "
                  f"{fmt_time(time.perf_counter() - start)} of ~{fmt_time(total)} planned", flush=True)  # fmt: skip
            if side == "course":
                result = run_course(e["id"], seed, args)
            elif "check" in e:
                result = run_check(e, cache["ours"], args)
            else:
                result = run_fit(e, plan(e, args, has_gpu, seed)[0], Path(args.runs), args.in_process)
            result.update(date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"), machine=short_here)
            if "error" in result:
                results["error"] = result.pop("error")
            else:
                results["seeds"][str(seed)] = result
                results.pop("error", None)
            print(f"[{done}] {label}: {fmt(result.get('value'))} ({results.get('error', 'ok')}) in "
                  f"{fmt_time(result['wall_s'])}", flush=True)  # fmt: skip
            save(e)
        # the further seeds come after every row's first: a check of ours is deterministic
        more = seed + 1 < e.get("seeds", args.seeds) and (side == "course" or "check" not in e)
        if more and "value" in result and (result["wall_s"] <= SLOW_S or "seeds" in e):
            todo.append((side, e, seed + 1))
            if not cached(side, e, seed + 1):
                total += result["wall_s"]
    if args.force and args.only == ["*"] and not (args.gpu or args.budget or args.max_batches or args.no_ours):
        # every CPU row rerun at the course's setting: the figure a reader wants for "how long is the table"
        cache["whole_run"] = {"command": invoked, "wall_s": round(time.perf_counter() - start, 1), "runs": done,
                              "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}  # fmt: skip
    save()
    print(f"wrote {out} ({fmt_time(time.perf_counter() - start)})")
    return cache


if __name__ == "__main__":
    run_command(main)
