"""Test accuracy and wall time of the Fashion-MNIST recipes end to end on the real data, against targets,
and the seconds per epoch of Lightning against a hand-written loop.

Runs each recipe as a user would (``python -m zoo.fit --config ...`` in a fresh process, so
imports, data loading, training, validation and testing all count) and reads its
``metrics.json``. With ``--peer``, first runs the course's own ``d2l`` LeNet script
(../shared/peers/d2l_lenet.py) in the same sitting, since this machine's speed varies.

    python -m scripts.recipe_bench [--data_dir ../shared/data/fashion_mnist] [--peer] [--overhead_only --bare]
        [--recipes lenet_fashion_mnist] [--out runs/bench/recipe_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.options import add_dry_run, dry_run_done, require
from zoo.core.io import write_json
from zoo.run.errors import run_command

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PEER_SCRIPT = SHARED / "peers" / "d2l_lenet.py"  # the course's LeNet with its own d2l package
# the course's numbers for LeNet, measured on this kind of machine (shared/peers/README.md)
COURSE_LENET = {"test_acc": 0.794, "wall_seconds": 139.3}
FAST_TARGET = {"test_acc": 0.91, "wall_seconds": 180.0}
RECIPES = ["lenet_fashion_mnist", "fashion_mnist_fast"]
#: recipe -> (its target, as the report words it; the figures it must reach)
TARGETS = {"lenet_fashion_mnist": ("acc >= course, wall < course", COURSE_LENET),
           "fashion_mnist_fast": ("acc >= 0.91 in < 180 s", FAST_TARGET)}  # fmt: skip


def run_recipe(config: str, data_dir: str, root: str, *extra: str) -> dict:
    """Train one recipe in a fresh process; its wall time and ``metrics.json``."""
    cmd = [sys.executable, "-m", "zoo.fit", "--config", config, "--data.init_args.data_dir", data_dir,
           "--data.init_args.download", "false", "--trainer.default_root_dir", root,
           "--trainer.enable_progress_bar", "false", *extra]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    metrics = json.loads(max(Path(root).glob(f"{Path(config).stem}/version_*/metrics.json"),
                             key=os.path.getmtime).read_text())  # fmt: skip
    return {"recipe": config, "wall_seconds": round(wall, 1), "test_acc": metrics["test"]["test/acc"],
            "epochs": metrics["epochs"], "train_examples_per_second": metrics["train_examples_per_second"]}  # fmt: skip


def run_peer(data_dir: str, python: str, pythonpath: str | None) -> dict:
    """The course's LeNet with its own ``d2l`` package (reads ../data/FashionMNIST/raw)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp, "data", "FashionMNIST", "raw")
        raw.mkdir(parents=True)
        for gz in Path(data_dir).glob("*-ubyte.gz"):
            subprocess.run(f"zcat {gz} > {raw / gz.stem}", shell=True, check=True)
        work = Path(tmp, "work")
        work.mkdir()
        env = dict(os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {}))
        t0 = time.perf_counter()
        out = subprocess.run([python, str(PEER_SCRIPT)], cwd=work, env=env,
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
        wall = time.perf_counter() - t0
    acc = re.search(r"test acc ([0-9.]+)", out)
    speed = re.search(r"([0-9.]+) examples/sec", out)
    return {"recipe": "course d2l train_ch6 (peer)", "wall_seconds": round(wall, 1),
            "test_acc": float(acc.group(1)) if acc else None, "epochs": 10,
            "train_examples_per_second": float(speed.group(1)) if speed else None}  # fmt: skip


def epoch_overhead(
    data_dir: str, epochs: int, repeats: int, zoo_args: list[str] | None = None, bare: bool = False
) -> dict:
    """Seconds per training epoch of LeNet (the recipe's model, data, batch 256 and SGD): the
    zoo's task under ``zoo.fit`` (Trainer, CSV logger, checkpoints, progress bar off) against a
    hand-written loop that does what the course's ``train_ch6`` does per batch (forward,
    cross-entropy, backward, step, and the epoch's loss and accuracy). Validation time is
    excluded on both sides.

    Both sides train the same trajectory: the loop takes the model and data module that
    ``zoo.fit``'s command line builds from the recipe (same seed, initial weights, split and
    batch order), and its epoch losses are returned beside the zoo's to show it: both sides do
    the same arithmetic on the same numbers. With ``bare``, the task under a bare Trainer is
    timed too."""
    import csv
    import statistics

    import torch
    import torch.nn.functional as F

    from zoo.cli.fit import main as fit
    from zoo.cli.fit import make_cli
    from zoo.run.allocator import keep_allocations_on_heap

    keep_allocations_on_heap()  # zoo.fit does this; the loop gets the same allocator settings
    recipe = ["--config", "configs/lenet_fashion_mnist.yaml", "--data.init_args.data_dir", data_dir,
              "--data.init_args.download", "false", "--trainer.max_epochs", str(epochs),
              "--trainer.enable_progress_bar", "false"]  # fmt: skip

    def loop_run(root: str) -> tuple[float, list[float]]:
        cli = make_cli([*recipe, "--trainer.default_root_dir", root])
        model, dm = cli.model.model, cli.datamodule
        dm.setup("fit")
        opt = torch.optim.SGD(model.parameters(), lr=cli.model.hparams.lr)
        seconds, losses = 0.0, []
        for _ in range(epochs):
            t0 = time.perf_counter()
            loss_sum, correct, n = 0.0, 0, 0
            for x, y in dm.train_dataloader():
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                loss_sum += loss.detach() * len(y)
                correct += (logits.argmax(1) == y).sum()
                n += len(y)
            seconds += time.perf_counter() - t0
            losses.append(float(loss_sum / n))
        return seconds / epochs, losses

    def bare_run(root: str) -> float:
        """The same task and data under a bare Trainer (no logger, callbacks, checkpoints or
        validation), timed as RunReport times zoo.fit: Lightning's own share of the overhead."""
        import lightning as L

        class BatchTimer(L.Callback):
            seconds = 0.0

            def on_train_epoch_start(self, trainer, pl_module) -> None:
                self.t = time.perf_counter()

            def on_train_batch_end(self, *args) -> None:
                now = time.perf_counter()
                self.seconds += now - self.t
                self.t = now

        cli = make_cli([*recipe, "--trainer.default_root_dir", root])
        timer = BatchTimer()
        trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, callbacks=[timer], limit_val_batches=0)  # fmt: skip
        trainer.fit(cli.model, datamodule=cli.datamodule)
        return timer.seconds / epochs

    def zoo_run(root: str) -> tuple[float, list[float]]:
        s = fit([*recipe, "--trainer.default_root_dir", root, *(zoo_args or [])])
        with open(Path(s["metrics_file"]).with_name("metrics.csv")) as f:
            losses = [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
        return s["train_seconds"] / s["epochs"], losses

    zoo_s, loop_s, bare_s, zoo_loss, loop_loss = [], [], [], [], []
    for _ in range(repeats):  # interleaved, so drifts in machine speed hit all alike
        with tempfile.TemporaryDirectory() as root:
            seconds, losses = zoo_run(root)
            zoo_s.append(seconds)
            zoo_loss.append(losses)
        with tempfile.TemporaryDirectory() as root:
            seconds, losses = loop_run(root)
            loop_s.append(seconds)
            loop_loss.append(losses)
        if bare:
            with tempfile.TemporaryDirectory() as root:
                bare_s.append(bare_run(root))
    ratios = [a / b for a, b in zip(zoo_s, loop_s)]
    return {"zoo_epoch_s": zoo_s, "loop_epoch_s": loop_s, "ratio": ratios,
            "ratio_median": statistics.median(ratios),
            "bare_epoch_s": bare_s, "bare_ratio": [a / b for a, b in zip(bare_s, loop_s)],
            "zoo_epoch_losses": zoo_loss[0], "loop_epoch_losses": loop_loss[0]}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data_dir", default=str(SHARED / "data" / "fashion_mnist"))
    ap.add_argument("--peer", action="store_true", help="also run the course's d2l LeNet")
    ap.add_argument("--peer_python", default=sys.executable)
    ap.add_argument("--peer_pythonpath", default=None, help="where the d2l package is installed")
    ap.add_argument("--out", default="runs/bench/recipe_bench.json", help="where the JSON goes (under the repository)")
    ap.add_argument("--overhead_only", action="store_true", help="only the Lightning-vs-loop epoch time")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per overhead measurement")
    ap.add_argument("--repeats", type=int, default=3, help="overhead measurements (median reported)")
    ap.add_argument("--zoo_args", nargs="*", default=[], help="more zoo.fit options for the overhead measurement")
    ap.add_argument("--bare", action="store_true", help="also time the task under a bare Lightning Trainer")
    ap.add_argument("--recipes", nargs="+", default=RECIPES, choices=RECIPES, help="the recipes trained end to end")
    add_dry_run(ap)
    args = ap.parse_args(argv)
    require(data_dir=args.data_dir, **({"peer": PEER_SCRIPT} if args.peer else {}))
    if args.dry_run:
        return dry_run_done(f"Fashion-MNIST in {args.data_dir}")
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)

    overhead = epoch_overhead(args.data_dir, args.epochs, args.repeats, args.zoo_args, args.bare)
    print("LeNet seconds per training epoch (zoo task under Lightning / hand-written loop):")
    for z, lp, r in zip(overhead["zoo_epoch_s"], overhead["loop_epoch_s"], overhead["ratio"]):
        print(f"  zoo {z:6.2f} s   loop {lp:6.2f} s   ratio {r:.3f}")
    print(f"  median ratio {overhead['ratio_median']:.3f}")
    if overhead["bare_epoch_s"]:
        print(
            "  the task under a bare Trainer (no logger, callbacks, checkpoints): "
            + " ".join(f"{s:.2f} s ({r:.3f})" for s, r in zip(overhead["bare_epoch_s"], overhead["bare_ratio"]))
            + f", median ratio {statistics.median(overhead['bare_ratio']):.3f}"
        )
        on_top = overhead["ratio_median"] / statistics.median(overhead["bare_ratio"])
        print(f"  the zoo on top of Lightning (zoo.fit / bare Trainer): {on_top:.3f} (target <= 1.03)")
    print(
        "  same trajectory, train loss per epoch: zoo "
        + " ".join(f"{v:.4f}" for v in overhead["zoo_epoch_losses"])
        + ", loop "
        + " ".join(f"{v:.4f}" for v in overhead["loop_epoch_losses"])
    )
    if args.overhead_only:
        return write_report(ROOT / args.out, [], overhead)

    rows = []
    with tempfile.TemporaryDirectory() as root:
        if args.peer:
            rows.append(run_peer(args.data_dir, args.peer_python, args.peer_pythonpath))
        for name in RECIPES:  # in this order, whatever the order of --recipes
            if name in args.recipes:
                row = run_recipe(f"configs/{name}.yaml", args.data_dir, root)
                row["target"], goal = TARGETS[name]
                row["met"] = row["test_acc"] >= goal["test_acc"] and row["wall_seconds"] < goal["wall_seconds"]
                rows.append(row)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"{'recipe':40} {'test acc':>9} {'wall s':>8} {'ex/s':>9}  target")
    for r in rows:
        ex = r["train_examples_per_second"]
        verdict = "" if "met" not in r else ("MET" if r["met"] else "MISSED")
        print(
            f"{r['recipe']:40} {r['test_acc'] or float('nan'):9.4f} {r['wall_seconds']:8.1f} "
            f"{ex or float('nan'):9.0f}  {r.get('target', '')} {verdict}"
        )
    write_report(ROOT / args.out, rows, overhead)


def write_report(out: Path, rows: list[dict], overhead: dict) -> None:
    """The recipes' rows and the overhead measurement as JSON at ``out`` (atomically)."""
    write_json(out, {"machine": platform.platform(), "cpus": os.cpu_count(), "rows": rows, "overhead": overhead})
    print(f"wrote {out}")


if __name__ == "__main__":
    run_command(main)
