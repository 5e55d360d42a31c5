"""Centre words per second and losses of word2vec on Penn Treebank against the course's own pipeline, back
to back in one process.

* **the course**: the ``d2l`` package (1.0.3; ``pip install --no-deps d2l==1.0.3 --target DIR`` plus
  ``ipython``, ``matplotlib-inline`` and ``traitlets``, then ``--d2l_path DIR``) builds its batches with
  ``load_data_ptb(512, 5, 5)`` (from the local PTB: its download is replaced by the folder) and a
  course-style loop (book section 14.4's ``train``: Adam, the masked ``SigmoidBCELoss`` rescaled by
  ``mask.shape[1] / mask.sum(1)``, the batch's summed loss back-propagated) trains the zoo's own
  ``word2vec`` module, so only the pipelines differ.
* **ours**: ``zoo.fit`` on ``configs/word2vec_ptb.yaml`` (the same settings).

Each side reports the data preparation's seconds, training centre words per second (the course's
"tokens/sec": examples over the training time; ours over zoo.fit's training time), the last
epoch's mean loss and the mean over all epochs (both on the course's scale; the course's loop
accumulates over every epoch, so its printed 0.410 is the second) and the nearest words to ``chip``
by cosine (the course: intel 0.717, microprocessor 0.699, chips 0.680).

    python -m scripts.word2vec_bench --d2l_path /tmp/d2l_peer            # 5 epochs each
    python -m scripts.word2vec_bench --d2l_path /tmp/d2l_peer --smoke    # 2,000 lines, 3 batches: the script runs
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from scripts.options import add_d2l_path, add_dry_run, dry_run_done, require, use_d2l
from zoo.run.errors import run_command

ROOT = Path(__file__).resolve().parents[1]
PTB = ROOT.parent / "shared" / "data" / "ptb" / "ptb"
QUERY, K = "chip", 3
COURSE = {"loss": 0.410, "chip": [("intel", 0.717), ("microprocessor", 0.699), ("chips", 0.680)]}


def _nearest(model: torch.nn.Module, idx_to_token: list[str], token_to_idx: dict[str, int]) -> list:
    if QUERY not in token_to_idx:
        return []
    cos, idx = model.similar(torch.tensor([token_to_idx[QUERY]]), K)
    return [(idx_to_token[int(i)], round(float(c), 3)) for c, i in zip(cos[0], idx[0], strict=True)]


def course_side(ptb: Path, epochs: int, max_batches: int | None) -> dict[str, Any]:
    """d2l's ``load_data_ptb`` and the book's training loop around the zoo's ``word2vec``."""
    from d2l import torch as d2l

    from zoo.models.registry import create_model

    d2l.download_extract = lambda name, folder=None: str(ptb)  # the local copy, no download
    torch.manual_seed(0)
    t0 = time.perf_counter()
    data_iter, vocab = d2l.load_data_ptb(512, 5, 5)
    data_seconds = time.perf_counter() - t0
    net = create_model("word2vec", vocab_size=len(vocab), embed_size=100)  # xavier-initialised, as the course
    optimizer = torch.optim.Adam(net.parameters(), lr=0.002)
    train_seconds, loss_sum, examples, last = 0.0, 0.0, 0, (0.0, 0)
    for _ in range(epochs):  # the course's Accumulator spans every epoch: it prints the mean over all of them
        t0, before = time.perf_counter(), (loss_sum, examples)
        for i, batch in enumerate(data_iter):
            if max_batches is not None and i == max_batches:
                break
            optimizer.zero_grad()
            center, context_negative, mask, label = batch
            pred = net(center, context_negative)
            bce = F.binary_cross_entropy_with_logits(pred.float(), label.float(), weight=mask.float(), reduction="none")
            loss = bce.mean(1) / mask.sum(1) * mask.shape[1]  # the course's SigmoidBCELoss and rescaling
            loss.sum().backward()
            optimizer.step()
            loss_sum, examples = loss_sum + float(loss.detach().sum()), examples + loss.numel()
        train_seconds += time.perf_counter() - t0
        last = (loss_sum - before[0], examples - before[1])
    # (the course's tokens/sec divides every epoch's examples by the last epoch's time; here by all of it)
    return {"data_seconds": round(data_seconds, 1), "train_seconds": round(train_seconds, 2),
            "tokens_per_second": round(examples / train_seconds, 1), "loss": round(last[0] / last[1], 4),
            "loss_all_epochs": round(loss_sum / examples, 4),
            "vocab_size": len(vocab), "chip": _nearest(net, vocab.idx_to_token, vocab.token_to_idx)}  # fmt: skip


def zoo_side(ptb: Path, epochs: int, root: Path, max_batches: int | None) -> dict[str, Any]:
    """``zoo.fit`` on the recipe, then the last epoch's loss and ``chip``'s neighbours."""
    from datamodules import PTBWord2Vec
    from zoo.cli.fit import main as fit
    from zoo.core.checkpoint import load_task
    from zoo.tasks.word2vec import Word2Vec

    torch.manual_seed(0)
    t0 = time.perf_counter()
    data = PTBWord2Vec(data_dir=str(ptb))
    data.setup()  # timed apart (zoo.fit builds it again): the data side of the comparison
    data_seconds, n_train = time.perf_counter() - t0, len(data._train)
    extra = ["--trainer.limit_train_batches", str(max_batches), "--trainer.limit_val_batches", "1",
             "--trainer.limit_test_batches", "1"] if max_batches is not None else []  # fmt: skip
    summary = fit(["--config", str(ROOT / "configs" / "word2vec_ptb.yaml"), "--data.init_args.data_dir", str(ptb),
                   "--trainer.max_epochs", str(epochs), "--trainer.default_root_dir", str(root),
                   "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                   "--name", "word2vec", *extra])  # fmt: skip
    run_dir = Path(summary["best_checkpoint"]).parents[1]
    with open(run_dir / "metrics.csv", newline="") as f:
        losses = [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
    per_epoch = n_train if max_batches is None else min(n_train, max_batches * data.batch_size)
    task = load_task(run_dir / "checkpoints" / "last.ckpt", Word2Vec).eval()
    return {"data_seconds": round(data_seconds, 1), "train_seconds": summary["train_seconds"],
            "tokens_per_second": round(per_epoch * epochs / summary["train_seconds"], 1),
            "loss": round(losses[-1], 4) if losses else None, "val_loss": summary["best_val"].get("val/loss"),
            "loss_all_epochs": round(sum(losses) / len(losses), 4) if losses else None,
            "vocab_size": len(task.vocab),
            "chip": _nearest(task.model, task.vocab.idx_to_token, task.vocab.token_to_idx)}  # fmt: skip


def table(result: dict[str, Any]) -> str:
    lines = [f"{'side':7} {'data s':>7} {'tokens/s':>10} {'loss':>7} {'all ep.':>7}  nearest to {QUERY!r}"]
    for side in ("course", "zoo"):
        s = result.get(side)
        if s:
            near = ", ".join(f"{t} {c:.3f}" for t, c in s["chip"])
            lines.append(
                f"{side:7} {s['data_seconds']:>7.1f} {s['tokens_per_second']:>10.1f} {s['loss']:>7.4f} "
                f"{s['loss_all_epochs']:>7.4f}  {near}"
            )
    if "ratio" in result:
        lines.append(f"ours / the course's loop, centre words per second: {result['ratio']:.2f}x")
    course = ", ".join(f"{t} {c}" for t, c in COURSE["chip"])
    lines.append(f"the book printed (GPU): loss {COURSE['loss']} (the mean over all epochs), {course}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ptb_dir", default=str(PTB), help="the folder of ptb.train.txt, ptb.valid.txt, ptb.test.txt")
    add_d2l_path(p, required=False)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--smoke", action="store_true", help="2,000 lines of PTB, 1 epoch of 3 batches: the script runs")
    p.add_argument("--out", default="runs/bench/word2vec_bench.json", help="where the JSON goes")
    add_dry_run(p)
    args = p.parse_args(argv)
    sys.argv = sys.argv[:1]  # zoo.fit's LightningCLI gets its arguments as a list, not these
    use_d2l(args.d2l_path)
    require(ptb_dir=Path(args.ptb_dir) / "ptb.train.txt")
    if args.dry_run:
        return dry_run_done(f"PTB in {args.ptb_dir}")
    epochs, max_batches = (1, 3) if args.smoke else (args.epochs, None)
    result: dict[str, Any] = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                          "torch": torch.__version__, "threads": torch.get_num_threads()},
                              "smoke": args.smoke, "epochs": epochs}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        ptb = Path(args.ptb_dir)
        if args.smoke:  # the first 2,000 lines of each file
            ptb = Path(tmp) / "ptb"
            ptb.mkdir()
            for name in ("train", "valid", "test"):
                lines = (Path(args.ptb_dir) / f"ptb.{name}.txt").read_text(encoding="utf-8").splitlines(True)
                (ptb / f"ptb.{name}.txt").write_text("".join(lines[:2000]), encoding="utf-8")
        if args.d2l_path:
            result["course"] = course_side(ptb, epochs, max_batches)
        result["zoo"] = zoo_side(ptb, epochs, Path(tmp) / "runs", max_batches)
    if "course" in result:
        result["ratio"] = round(result["zoo"]["tokens_per_second"] / result["course"]["tokens_per_second"], 3)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(table(result))
    return result


if __name__ == "__main__":
    run_command(main)
