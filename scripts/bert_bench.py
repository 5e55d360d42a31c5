"""Sentence pairs per second and MLM/NSP losses of BERT pretraining at the course's settings, the course's
code and ours back to back in one process, on the same text.

* **the course**: the ``d2l`` package (1.0.3; ``pip install --no-deps d2l==1.0.3 --target DIR`` plus
  ``ipython``, ``matplotlib-inline`` and ``traitlets``, then ``--d2l_path DIR``): ``load_data_wiki(512, 64)`` (its
  download replaced by a folder holding ``wiki.train.tokens``: the training paragraphs ours reads,
  one a line), its ``BERTModel`` (128 wide, FFN 256, 2 heads, 2 blocks, dropout 0.2) and the
  book's ``train_bert`` loop (Adam lr 0.01, 50 steps, ``_get_batch_loss_bert``), as written in
  section 15.10, without its plot.
* **ours**: ``zoo.fit`` on ``configs/bert_pretrain_wikitext2.yaml`` (WikiText-2's valid.txt and
  test.txt, 90% of their paragraphs for training: the project's copy has no training file).

Each side reports the MLM and NSP losses averaged over the 50 steps (the figures the course
prints, 5.451 / 0.756 on the full WikiText-2 training file) and sentence pairs per second over the
training loop, data loading included (the course's own timer, which leaves the loading out, is
reported too). The course's MLM loss also averages over padded prediction slots (a known bug of
``_get_batch_loss_bert``: ``nn.CrossEntropyLoss()`` already averages over every slot before the
weights apply); the course side also gives it over the real predictions only, ours' definition.
Ours' 50-step means are its epochs' means weighted by their steps.

    python -m scripts.bert_bench --d2l_path /tmp/d2l_peer             # both sides, 50 steps each
    python -m scripts.bert_bench --d2l_path /tmp/d2l_peer --smoke     # 2 steps each
    python -m scripts.bert_bench --sides zoo                          # ours only (no d2l needed)
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scripts.options import add_d2l_path, add_dry_run, dry_run_done, require, use_d2l
from zoo.core.errors import ConfigError
from zoo.core.io import write_json
from zoo.run.errors import run_command

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "wikitext2"
RECIPE = ROOT / "configs" / "bert_pretrain_wikitext2.yaml"
COURSE = {"mlm_loss": 5.451, "nsp_loss": 0.756}  # the book's section 15.10, full WikiText-2 training file
BATCH, MAX_LEN = 512, 64


def training_text(data_dir: Path) -> tuple[str, int]:
    """The paragraphs ours trains on, one a line as in ``wiki.train.tokens``, and their count."""
    from datamodules import WikiText2BERT

    dm = WikiText2BERT(data_dir=str(data_dir), train_on="valid+test", download=False)
    paragraphs = dm.paragraphs()["train"]
    # a trailing " " as in the original lines: the course keeps a line only if it holds " . "
    return "".join(" " + " . ".join(" ".join(s) for s in p) + " \n" for p in paragraphs), len(paragraphs)


class RecordingLoss(nn.Module):
    """``nn.CrossEntropyLoss()`` that also keeps its last per-element losses, so the course's
    MLM loss can be taken over the real predictions too (same value returned, same gradients)."""

    def __init__(self) -> None:
        super().__init__()
        self.per_element: list[torch.Tensor] = []

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, target, reduction="none")
        self.per_element.append(loss.detach())
        return loss.mean()


def course_side(text: str, steps: int) -> dict[str, Any]:
    """The book's ``train_bert`` on ``load_data_wiki``'s batches and ``d2l.BERTModel``."""
    from d2l import torch as d2l

    folder = Path(tempfile.mkdtemp(prefix="bert-bench-wiki-"))
    (folder / "wiki.train.tokens").write_text(text, encoding="utf-8")
    d2l.download_extract = lambda name, folder_name=None: str(folder)  # the same text, no download
    random.seed(0)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    train_iter, vocab = d2l.load_data_wiki(BATCH, MAX_LEN)
    build_seconds = time.perf_counter() - t0
    net = d2l.BERTModel(len(vocab), num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_blks=2, dropout=0.2)
    loss = RecordingLoss()
    net(*next(iter(train_iter))[:4])  # the book's call that sizes the lazy layers
    trainer = torch.optim.Adam(net.parameters(), lr=0.01)
    step, timer = 0, d2l.Timer()
    metric = d2l.Accumulator(5)  # MLM, NSP, pairs, steps, MLM over real predictions
    t0 = time.perf_counter()
    while step < steps:
        for tokens_X, segments_X, valid_lens_x, pred_positions_X, mlm_weights_X, mlm_Y, nsp_y in train_iter:
            trainer.zero_grad()
            timer.start()
            loss.per_element.clear()
            mlm_l, nsp_l, total = d2l._get_batch_loss_bert(net, loss, len(vocab), tokens_X, segments_X, valid_lens_x,
                                                       pred_positions_X, mlm_weights_X, mlm_Y, nsp_y)  # fmt: skip
            total.backward()
            trainer.step()
            w = mlm_weights_X.reshape(-1)
            real = float((loss.per_element[0] * w).sum() / w.sum())
            metric.add(float(mlm_l.detach()), float(nsp_l.detach()), tokens_X.shape[0], 1, real)
            timer.stop()
            step += 1
            if step == steps:
                break
    seconds = time.perf_counter() - t0
    return {"mlm_loss_course_scale": round(metric[0] / metric[3], 3), "nsp_loss": round(metric[1] / metric[3], 3),
            "mlm_loss_real_predictions": round(metric[4] / metric[3], 3),
            "pairs_per_second": round(metric[2] / seconds, 1),
            "pairs_per_second_course_timer": round(metric[2] / timer.sum(), 1),
            "train_seconds": round(seconds, 2), "dataset_build_seconds": round(build_seconds, 2),
            "pairs": len(train_iter.dataset), "vocab_size": len(vocab), "steps": steps}  # fmt: skip


def _step_weighted_means(run_dir: Path, steps: int) -> dict[str, float]:
    """The 50-step means of the epochs' logged train/mlm_loss and train/nsp_loss."""
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/mlm_loss")]
    out, previous, total = {"mlm_loss": 0.0, "nsp_loss": 0.0}, 0, 0
    for r in rows:
        n = int(r["step"]) + 1 - previous
        previous, total = int(r["step"]) + 1, total + n
        for k in out:
            out[k] += float(r[f"train/{k}"]) * n
    return {k: round(v / max(1, total), 3) for k, v in out.items()} | {"steps_seen": total}


def zoo_side(data_dir: Path, root: Path, steps: int) -> dict[str, Any]:
    from zoo.cli.fit import main as fit

    torch.manual_seed(0)
    summary = fit(["--config", str(RECIPE), "--data.init_args.data_dir", str(data_dir),
                   "--data.init_args.download", "false", "--trainer.max_steps", str(steps),
                   "--trainer.val_check_interval", str(min(10, steps)), "--trainer.default_root_dir", str(root),
                   "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                   "--name", "bert"])  # fmt: skip
    run_dir = Path(summary["metrics_file"]).parent
    return {**_step_weighted_means(run_dir, steps), "pairs_per_second": summary["train_examples_per_second"],
            "train_seconds": summary["train_seconds"], "test": summary["test"],
            "checkpoint": str(run_dir / "checkpoints" / "last.ckpt")}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_d2l_path(p, required=False)
    p.add_argument("--data", type=Path, default=DATA, help="WikiText-2 folder (valid.txt, test.txt)")
    p.add_argument("--sides", nargs="+", choices=["course", "zoo"], default=["course", "zoo"])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--smoke", action="store_true", help="2 steps each: check the script runs")
    p.add_argument("--root", type=Path, default=None, help="where ours writes its run (default: a temp folder)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    add_dry_run(p)
    args = p.parse_args(argv)
    steps = 2 if args.smoke else args.steps
    if "course" in args.sides:
        if not args.d2l_path:
            raise ConfigError("--d2l_path DIR is needed for the course's side (or --sides zoo)")
        use_d2l(args.d2l_path)
    require(data=args.data)
    if args.dry_run:
        return dry_run_done(f"{' and '.join(args.sides)} on {args.data}")
    results: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                               f"torch {torch.__version__}, {torch.get_num_threads()} threads",
                               "steps": steps, "course_book": COURSE}  # fmt: skip
    text, n_paragraphs = training_text(args.data)
    results["training_paragraphs"] = n_paragraphs
    if "course" in args.sides:
        with contextlib.redirect_stdout(io.StringIO()):
            results["course"] = course_side(text, steps)
        print("course:", json.dumps(results["course"]), flush=True)
    if "zoo" in args.sides:
        root = args.root or Path(tempfile.mkdtemp(prefix="bert-bench-runs-"))
        results["zoo"] = zoo_side(args.data, root, steps)
        print("zoo:", json.dumps(results["zoo"]), flush=True)
    if "course" in results and "zoo" in results:
        results["zoo_over_course_pairs_per_second"] = round(results["zoo"]["pairs_per_second"]
                                                            / results["course"]["pairs_per_second"], 2)  # fmt: skip
    print(json.dumps(results, indent=2))
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    run_command(main)
