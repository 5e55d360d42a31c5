"""Every benchmark of the course's code against ours, back to back, in one table: the course's
throughput, ours, their ratio (ours / the course's: above 1 is faster) and the quality each side
reached (a loss or an accuracy), with the load average before and after, so an idle run can be
told from a loaded one.

Each bench runs in its own process (``python -m scripts.<bench> ...``) and writes its results to a
JSON file, which this script reads; the benches' logs and JSON stay in ``--out`` beside the
table (``bench_all.md`` and ``bench_all.json``, written atomically). The benches:

* ``lenet``: ``recipe_bench --peer --bare``: the course's LeNet script (``d2l.train_ch6``, 10
  epochs) against ``configs/lenet_fashion_mnist.yaml`` under ``zoo.fit``, images/s and test accuracy;
  and seconds per LeNet epoch of ``zoo.fit`` against the same task under a bare Lightning Trainer.
* ``word2vec``: ``word2vec_bench`` (2 epochs of PTB), centre words/s and the last epoch's loss.
* ``seq2seq``, ``transformer``: ``translation_bench --archs ARCH`` at the course's epochs, target
  tokens/s and the final loss on the course's scale.
* ``bert``: ``bert_bench`` (50 steps of BERT pretraining), sentence pairs/s, MLM and NSP losses.
* ``detection``: ``detection_bench`` (TinySSD, 2 timed epochs), images/s, class error and bbox MAE.

These settings were sized from the benches' earlier idle timings to take about 12 minutes on an
idle 2-core machine (under 20); the table records each bench's wall seconds. ``--smoke`` runs
every bench at tiny settings (a few batches; ``lenet`` only its overhead part, since the course's
script always trains 10 epochs): a minute or two, to check the pipeline, not to measure.

``--gpu`` lets the benches whose both sides can train on CUDA see the GPU (``lenet``:
``d2l.try_gpu`` and Lightning's accelerator ``auto``) and keeps it hidden from the others, whose
course side is written for the CPU; the table's device column says which ran where. Without
``--gpu`` every bench runs with the GPU hidden, so neither side uses one.

    python -m scripts.bench_all --d2l_path DIR [--smoke] [--gpu] [--only seq2seq bert] [--threads N]
        [--data_root ../shared/data] [--out runs/bench/bench_all]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.options import add_d2l_path, add_dry_run, dry_run_done, require, use_d2l
from zoo.core.errors import ConfigError
from zoo.core.io import atomic_write, write_json
from zoo.run.errors import run_command

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
NO_GPU_PATH = "cpu (no GPU path: the course's side runs on the CPU)"


@dataclass(frozen=True)
class Bench:
    """One bench script: its options at full and smoke settings (given the run's options and the
    JSON file to write), the option naming that file, where its data lives under ``--data_root``,
    and how its JSON becomes rows of the table."""

    script: str
    full: Callable[[argparse.Namespace], list[str]]
    smoke: Callable[[argparse.Namespace], list[str]]
    json_option: str
    data: tuple[str, str]  # (the bench's data option, the folder under --data_root)
    rows: Callable[[dict[str, Any]], list[dict[str, Any]]]
    gpu: bool  # whether both sides can train on CUDA
    takes_d2l_path: bool = True  # recipe_bench runs the course's script with the package on its PYTHONPATH


def row(bench: str, reference: str, course: float | None, ours: float | None, unit: str, course_quality: str,
        our_quality: str, higher_is_faster: bool = True) -> dict[str, Any]:  # fmt: skip
    """A line of the table; ``ratio`` is ours over the course's throughput (for a time, the
    course's seconds over ours), so above 1 always means ours is faster."""
    ratio = None
    if course and ours:
        ratio = round(ours / course if higher_is_faster else course / ours, 3)
    return {"bench": bench, "reference": reference, "course": course, "ours": ours, "unit": unit, "ratio": ratio,
            "course_quality": course_quality, "our_quality": our_quality}  # fmt: skip


def lenet_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    course = next((x for x in r["rows"] if x["recipe"].startswith("course")), None)
    ours = next((x for x in r["rows"] if "lenet_fashion_mnist" in x["recipe"]), None)
    if course and ours:
        out.append(row("LeNet, Fashion-MNIST, 10 epochs", "d2l train_ch6 (shared/peers/d2l_lenet.py)",
                       course["train_examples_per_second"], ours["train_examples_per_second"], "img/s",
                       f"test acc {course['test_acc']:.3f}", f"test acc {ours['test_acc']:.3f}"))  # fmt: skip
        # the whole command, start-up, data loading and testing included: what a user waits for
        out.append(row("LeNet, Fashion-MNIST, 10 epochs, the whole run", "python d2l_lenet.py",
                       course["wall_seconds"], ours["wall_seconds"], "s wall", f"test acc {course['test_acc']:.3f}",
                       f"test acc {ours['test_acc']:.3f}", higher_is_faster=False))  # fmt: skip
    o = r["overhead"]
    if o["bare_epoch_s"]:
        loss = f"train loss {o['zoo_epoch_losses'][-1]:.4f} (hand loop {o['loop_epoch_losses'][-1]:.4f})"
        out.append(row("zoo.fit over a bare Trainer, LeNet epoch", "the task under a bare Lightning Trainer",
                       round(statistics.median(o["bare_epoch_s"]), 3), round(statistics.median(o["zoo_epoch_s"]), 3),
                       "s/epoch", "(logs nothing)", loss, higher_is_faster=False))  # fmt: skip
    return out


def word2vec_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    c, z = r["course"], r["zoo"]
    return [row(f"word2vec, PTB, {r['epochs']} epoch(s)", "d2l load_data_ptb + the book's loop",
                c["tokens_per_second"], z["tokens_per_second"], "centre words/s", f"loss {c['loss']:.4f}",
                f"loss {z['loss']:.4f}")]  # fmt: skip


def translation_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for arch, sides in r["archs"].items():
        c, z = sides["course"], sides["zoo"]
        out.append(row(f"{arch}, fra-eng, {sides['epochs']} epoch(s)", "d2l load_data_nmt + train_seq2seq",
                       c["tokens_per_second"], z["tokens_per_second"], "tokens/s",
                       f"loss {c['loss_course_scale']:.4f} (course scale)",
                       f"loss {z['loss_course_scale']:.4f} (course scale)"))  # fmt: skip
        f = sides.get("floor")
        if f:  # the least loop around the same module: how far any loop could take the ratio
            out.append(row(f"{arch}, the bare loop around the same module", "d2l load_data_nmt + train_seq2seq",
                           c["tokens_per_second"], f["tokens_per_second"], "tokens/s",
                           f"loss {c['loss_course_scale']:.4f} (course scale)",
                           f"loss {f['loss_course_scale']:.4f} (course scale)"))  # fmt: skip
    return out


def bert_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    c, z = r["course"], r["zoo"]
    return [row(f"BERT pretraining, WikiText-2, {r['steps']} steps", "d2l load_data_wiki + BERTModel + train_bert",
                c["pairs_per_second"], z["pairs_per_second"], "pairs/s",
                f"MLM {c['mlm_loss_real_predictions']:.3f} / NSP {c['nsp_loss']:.3f}",
                f"MLM {z['mlm_loss']:.3f} / NSP {z['nsp_loss']:.3f}")]  # fmt: skip


def detection_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    return [row(f"TinySSD, bananas, {r['epochs']} timed epoch(s)", "d2l multibox_prior/multibox_target loop",
                round(r["course_images_per_s"], 2), round(r["zoo_images_per_s"], 2), "img/s",
                f"class err {r['course_class_err']:.2e}, bbox MAE {r['course_bbox_mae']:.2e}",
                f"class err {r['zoo_class_err']:.2e}, bbox MAE {r['zoo_bbox_mae']:.2e}")]  # fmt: skip


BENCHES: dict[str, Bench] = {
    "lenet": Bench("recipe_bench",
                   lambda a: ["--peer", "--peer_pythonpath", str(Path(a.d2l_path).resolve()), "--bare",
                              "--recipes", "lenet_fashion_mnist", "--epochs", "1", "--repeats", "3"],
                   lambda a: ["--overhead_only", "--bare", "--epochs", "1", "--repeats", "1"],
                   "--out", ("--data_dir", "fashion_mnist"), lenet_rows, gpu=True, takes_d2l_path=False),
    "word2vec": Bench("word2vec_bench", lambda a: ["--epochs", "2"], lambda a: ["--smoke"],
                      "--out", ("--ptb_dir", "ptb/ptb"), word2vec_rows, gpu=False),
    "seq2seq": Bench("translation_bench", lambda a: ["--archs", "seq2seq", "--floor"],
                     lambda a: ["--archs", "seq2seq", "--smoke", "--floor"],
                     "--out", ("--data_dir", "fra_eng/fra-eng"), translation_rows, gpu=False),
    "transformer": Bench("translation_bench", lambda a: ["--archs", "transformer", "--floor"],
                         lambda a: ["--archs", "transformer", "--smoke", "--floor"],
                         "--out", ("--data_dir", "fra_eng/fra-eng"), translation_rows, gpu=False),
    "bert": Bench("bert_bench", lambda a: ["--steps", "50", "--root", a.scratch],
                  lambda a: ["--smoke", "--root", a.scratch], "--json", ("--data", "wikitext2"), bert_rows, gpu=False),
    "detection": Bench("detection_bench", lambda a: ["--epochs", "2"],
                       lambda a: ["--epochs", "1", "--limit_images", "16", "--batch_size", "8", "--image_size", "128"],
                       "--json", ("--data_dir", "banana_yolo_roboflow"), detection_rows, gpu=False),
}  # fmt: skip


def command(name: str, args: argparse.Namespace, json_path: Path) -> list[str]:
    b = BENCHES[name]
    option, folder = b.data
    cmd = [sys.executable, "-m", f"scripts.{b.script}", option, str(Path(args.data_root) / folder)]
    if b.takes_d2l_path:
        cmd += ["--d2l_path", str(Path(args.d2l_path).resolve())]
    return [*cmd, *(b.smoke(args) if args.smoke else b.full(args)), b.json_option, str(json_path)]


def environment(name: str, args: argparse.Namespace) -> tuple[dict[str, str], str]:
    """The bench's environment and the device it trains on: the GPU stays hidden unless ``--gpu``
    asks for it and both of the bench's sides can use it (otherwise Lightning's ``auto`` would put
    our side alone on the GPU)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    if args.gpu and BENCHES[name].gpu:
        return env, "cuda"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env, NO_GPU_PATH if args.gpu else "cpu"


def run_bench(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One bench in its own process; its rows, or why there are none."""
    json_path, log = out / f"{name}.json", out / f"{name}.log"
    json_path.unlink(missing_ok=True)  # a stale file must not stand in for a failed run
    cmd = command(name, args, json_path)
    env, device = environment(name, args)
    print(f"[{name}] {shlex.join(cmd)}", flush=True)
    start = time.perf_counter()
    with open(log, "w") as f:
        try:
            status = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                    timeout=args.timeout).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            status = f"timed out after {args.timeout} s"
    wall = round(time.perf_counter() - start, 1)
    result = {"bench": name, "command": shlex.join(cmd), "device": device, "wall_seconds": wall, "log": str(log)}
    if status != 0 or not json_path.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        why = status if isinstance(status, str) else f"exit status {status}"
        return {**result, "error": f"{why}: {tail[0][-300:]} (log: {log})", "rows": []}
    try:
        rows = BENCHES[name].rows(json.loads(json_path.read_text()))
    except (KeyError, TypeError, ValueError) as e:  # the bench wrote a JSON of another shape
        return {**result, "error": f"{json_path} lacks what the table reads ({type(e).__name__}: {e})", "rows": []}
    print(f"[{name}] {wall} s", flush=True)
    return {**result, "rows": [{**r, "device": device} for r in rows]}


def _num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.3f}" if abs(x) < 10 else f"{x:,.1f}"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [f"{'Smoke run (tiny settings: not a measurement)' if report['smoke'] else 'Benchmarks'}, "
             f"{m['started']}: {m['cpus']} CPUs, {m['platform']}, threads {m['threads']}, "
             f"load average {m['load_before']} before, {m['load_after']} after; {report['wall_seconds']} s in all.",
             "", "| bench | the course's code | course | ours | unit | ours / course | course quality | our quality "
             "| device | wall s |", "|---|---|---:|---:|---|---:|---|---|---|---:|"]  # fmt: skip
    for b in report["benches"]:
        for r in b["rows"]:
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
            lines.append(f"| {r['bench']} | {r['reference']} | {_num(r['course'])} | {_num(r['ours'])} | {r['unit']} | "
                         f"{ratio} | {r['course_quality']} | {r['our_quality']} | {r['device']} | "
                         f"{b['wall_seconds']} |")  # fmt: skip
        if "error" in b:
            lines.append(f"| {b['bench']} | failed: {b['error']} | | | | | | | {b['device']} | {b['wall_seconds']} |")
    lines += ["", "Commands:", ""] + [f"* `{b['command']}`" for b in report["benches"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_d2l_path(p, required=True)
    p.add_argument("--only", nargs="+", choices=list(BENCHES), default=list(BENCHES), help="run these benches only")
    p.add_argument("--smoke", action="store_true", help="tiny settings (a minute or two): checks the pipeline")
    p.add_argument("--gpu", action="store_true", help="train on CUDA where both sides of a bench can")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of every bench (default: inherited)")
    p.add_argument("--data_root", default=str(SHARED), help="the data sets' folder (fashion_mnist, ptb, ...)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds one bench may take")
    p.add_argument("--out", default="runs/bench/bench_all", help="folder of the table and the benches' JSON and logs")
    add_dry_run(p)
    args = p.parse_args(argv)
    args.data_root = str(Path(args.data_root).resolve())  # the benches run in the repository's root
    use_d2l(args.d2l_path)  # checks the folder holds the package; the benches load it themselves
    for name in args.only:
        require(**{BENCHES[name].data[0].lstrip("-"): Path(args.data_root) / BENCHES[name].data[1]})
    if args.gpu:
        import torch  # only to check for CUDA: the benches do the training

        if not torch.cuda.is_available():
            raise ConfigError("--gpu: no CUDA device is visible to PyTorch on this machine")
    if args.dry_run:
        return dry_run_done(f"{', '.join(args.only)}{' (smoke)' if args.smoke else ''}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report: dict[str, Any] = {"smoke": args.smoke, "gpu": args.gpu, "machine": {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "platform": platform.platform(),
        "cpus": os.cpu_count(), "threads": args.threads or os.environ.get("OMP_NUM_THREADS", "default"),
        "load_before": [round(x, 2) for x in os.getloadavg()]}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-all-") as scratch:
        args.scratch = scratch  # the runs the benches keep (checkpoints) go here and are removed
        report["benches"] = [run_bench(name, args, out) for name in args.only]
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    text = markdown(report)
    with atomic_write(out / "bench_all.md") as f:
        f.write(text)
    write_json(out / "bench_all.json", report)
    print(f"\n{text}\nwrote {out / 'bench_all.md'} and {out / 'bench_all.json'}")
    failed = [b["bench"] for b in report["benches"] if "error" in b]
    if failed:
        raise SystemExit(f"error: {', '.join(failed)} failed (see the table)")
    return report


if __name__ == "__main__":
    run_command(main)
