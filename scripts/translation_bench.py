"""Tokens per second and losses of the translation recipes against the course's own loop, back to back in
one process.

For ``seq2seq`` and ``transformer`` (``--archs``), first the course's own loop, then ours, on the
same machine in the same sitting:

* **the course**: the ``d2l`` package (1.0.3; ``pip install --no-deps d2l==1.0.3 --target DIR`` plus
  ``ipython``, ``matplotlib-inline`` and ``traitlets``, then ``--d2l_path DIR``) builds its batches with
  ``load_data_nmt`` (from the local ``fra.txt``: its download is replaced by the folder) and trains
  with ``train_seq2seq`` the zoo's own module (the package has no decoder of its own), called as
  ``net(X, dec_input, X_valid_len)``. Its ``Animator`` is silenced: plotting is not training.
* **ours**: ``zoo.fit`` on ``configs/<arch>_fra_eng.yaml`` with the same pairs (the course's
  ``tokenize_nmt`` keeps lines 0..600, so both train on 601 pairs).

``--floor`` adds a third side, **the floor**: the least loop around the same module and batches
(forward with teacher forcing, the masked cross-entropy, backward, gradient clipping and fused
Adam in plain Python, no logging, no validation). The course's side trains the zoo's own module, so
a speed-up inside the model speeds both sides alike: the ratio measures the loops alone, and the
floor over the course is the most any loop can reach on this module.

Each side reports training tokens per second (target tokens, ``<eos>`` included, over the training
batches' time), the final training loss (ours per token, and on the course's scale, which divides
each sentence's loss by ``num_steps``), and the course's BLEU (k=2) on its four sentences, decoded
greedily. Ours also gives the corpus sacreBLEU of 200 held-out pairs. ``bahdanau`` may be listed
too (ours only: the speed comparison is asked for the other two).

``--large`` trains ``configs/transformer_fra_eng_large.yaml`` and reports its wall time, sacreBLEU
on the held-out test pairs, greedy and beam 4, and ten held-out translations.

    python -m scripts.translation_bench --d2l_path /tmp/d2l_pkg                   # the course comparison
    python -m scripts.translation_bench --d2l_path /tmp/d2l_pkg --floor           # and the bare loop
    python -m scripts.translation_bench --large --archs                           # the large recipe only
    python -m scripts.translation_bench --d2l_path /tmp/d2l_pkg --smoke --large   # a few batches of each
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scripts.options import add_d2l_path, add_dry_run, dry_run_done, require, use_d2l
from zoo.run.errors import run_command

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "fra_eng" / "fra-eng"
ENGLISH = ["go .", "i lost .", "he's calm .", "i'm home ."]
FRENCH = ["va !", "j'ai perdu .", "il est calme .", "je suis chez moi ."]
# d2l-zh 2.0.0 (GPU): final training loss (its scale) and the BLEU of the four sentences
COURSE = {
    "seq2seq": {"loss": 0.019, "bleu": [1.000, 1.000, 0.537, 0.803]},
    "bahdanau": {"loss": 0.020, "bleu": None},
    "transformer": {"loss": 0.032, "bleu": [1.000, 1.000, 1.000, 1.000]},
}
EPOCHS = {"seq2seq": 300, "bahdanau": 250, "transformer": 200}
NUM_STEPS, COURSE_PAIRS = 10, 601


class CourseNet(nn.Module):
    """A zoo seq2seq model behind the call ``train_seq2seq`` makes: ``Y_hat, _ = net(X, dec_X, X_len)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, X: torch.Tensor, dec_X: torch.Tensor, X_valid_len: torch.Tensor):
        return self.model(X, dec_X, X_valid_len), None


def arch_kwargs(arch: str) -> dict[str, Any]:
    from zoo.core.io import read_yaml

    return read_yaml(ROOT / "configs" / f"{arch}_fra_eng.yaml")["model"]["init_args"]["arch_kwargs"]


def course_side(arch: str, epochs: int, data_dir: Path, max_batches: int | None) -> dict[str, Any]:
    """The course's ``load_data_nmt`` + ``train_seq2seq`` on the zoo's ``arch``."""
    from d2l import torch as d2l

    from zoo.models.registry import create_model
    from zoo.ops.bleu import course_bleu
    from zoo.ops.decoding import greedy_search

    d2l.download_extract = lambda name, folder=None: str(data_dir)  # the local copy, no download
    d2l.Animator.add = lambda self, x, y: None
    torch.manual_seed(0)
    data_iter, src_vocab, tgt_vocab = d2l.load_data_nmt(64, NUM_STEPS, num_examples=COURSE_PAIRS - 1)
    if max_batches is not None:  # a smoke run: the first batches only
        batches = [b for _, b in zip(range(max_batches), data_iter, strict=False)]
        data_iter = batches
    tokens_per_epoch = int(sum(int(b[3].sum()) for b in data_iter))
    model = create_model(arch, vocab_size=(len(src_vocab), len(tgt_vocab)), **arch_kwargs(arch))
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):
        d2l.train_seq2seq(CourseNet(model), data_iter, 0.005, epochs, tgt_vocab, torch.device("cpu"))
    seconds = time.perf_counter() - t0
    printed = re.search(r"loss ([\d.]+)", out.getvalue())
    model.eval()
    src = [src_vocab[s.split()] + [src_vocab["<eos>"]] for s in ENGLISH]
    bleus = []
    for ids in src:
        row = greedy_search(model, torch.tensor([ids]), torch.tensor([len(ids)]), tgt_vocab["<bos>"],
                            tgt_vocab["<eos>"], NUM_STEPS)[0]  # fmt: skip
        bleus.append(round(course_bleu(" ".join(tgt_vocab.idx_to_token[i] for i in row), FRENCH[len(bleus)]), 3))
    return {"seconds": round(seconds, 2), "tokens_per_second": round(tokens_per_epoch * epochs / seconds, 1),
            "loss_course_scale": float(printed.group(1)) if printed else None, "bleu": bleus,
            "vocab_sizes": [len(src_vocab), len(tgt_vocab)]}  # fmt: skip


def _newest_run(experiment: Path) -> Path:
    return max(experiment.glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime).parents[1]


def _last_train_loss(run_dir: Path) -> float | None:
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    return float(rows[-1]["train/loss"]) if rows else None


def zoo_side(arch: str, epochs: int, data_dir: Path, root: Path, max_batches: int | None) -> dict[str, Any]:
    """``zoo.fit`` on the arch's recipe with the course's pairs, then the four sentences."""
    from datamodules import FraEng
    from zoo.cli.fit import main as fit
    from zoo.core.checkpoint import load_task
    from zoo.tasks.seq2seq import Seq2Seq, translate

    torch.manual_seed(0)
    extra = ["--trainer.limit_train_batches", str(max_batches), "--trainer.limit_val_batches", "1",
             "--trainer.limit_test_batches", "1", "--trainer.check_val_every_n_epoch", "1"
             ] if max_batches is not None else []  # fmt: skip
    summary = fit(["--config", str(ROOT / "configs" / f"{arch}_fra_eng.yaml"), "--data.init_args.data_dir",
                   str(data_dir), "--data.init_args.num_examples", str(COURSE_PAIRS),
                   "--trainer.max_epochs", str(epochs), "--trainer.default_root_dir", str(root),
                   "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                   "--name", arch, *extra])  # fmt: skip
    data = FraEng(data_dir=str(data_dir), num_examples=COURSE_PAIRS)
    data.setup()
    lens = data._train.tensors[3]
    batches = (len(lens) + data.batch_size - 1) // data.batch_size
    tokens = int(lens.sum()) if max_batches is None else int(lens.sum() * min(1.0, max_batches / batches))
    run_dir = _newest_run(root / arch)
    task = load_task(run_dir / "checkpoints" / "last.ckpt", Seq2Seq).eval()
    results = translate(task, ENGLISH, references=FRENCH)
    loss = _last_train_loss(run_dir)
    return {"seconds": summary["train_seconds"], "fit_wall_seconds": summary["wall_seconds"],
            "tokens_per_second": round(tokens * epochs / summary["train_seconds"], 1),
            "loss_per_token": loss, "loss_course_scale": None if loss is None else loss / NUM_STEPS,
            "bleu": [round(r.bleu, 3) for r in results], "translations": [r.translation for r in results],
            "heldout_sacrebleu": summary["test"].get("test/bleu"),
            "vocab_sizes": [len(task.src_vocab), len(task.tgt_vocab)]}  # fmt: skip


def floor_side(arch: str, epochs: int, data_dir: Path, max_batches: int | None) -> dict[str, Any]:
    """The same module, batches and optimizer settings as ``zoo_side`` in a bare loop: what is left
    of a step when nothing but the maths runs."""
    import torch.nn.functional as F

    from datamodules import FraEng
    from zoo.models.registry import create_model

    torch.manual_seed(0)
    data = FraEng(data_dir=str(data_dir), num_examples=COURSE_PAIRS)
    data.setup()
    batches = list(data.train_dataloader())[:max_batches]
    tokens = int(sum(int(b[3].sum()) for b in batches))
    model = create_model(arch, vocab_size=(len(data.src_vocab), len(data.tgt_vocab)), **arch_kwargs(arch)).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.005, fused=True)
    bos = data.tgt_vocab["<bos>"]
    t0 = time.perf_counter()
    for _ in range(epochs):
        for src, src_len, tgt, tgt_len, *_ in batches:
            logits = model(src, torch.cat([torch.full_like(tgt[:, :1], bos), tgt[:, :-1]], 1), src_len)
            valid = torch.arange(tgt.shape[1]) < tgt_len[:, None]
            loss = (F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none") * valid).sum() / valid.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
            opt.step()
    seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 2), "tokens_per_second": round(tokens * epochs / seconds, 1),
            "loss_per_token": float(loss), "loss_course_scale": float(loss) / NUM_STEPS, "bleu": None}


def large(data_dir: Path, root: Path, smoke: bool) -> dict[str, Any]:
    """The large recipe: wall time, held-out sacreBLEU greedy and beam 4, ten translations."""
    from torchmetrics.text import SacreBLEUScore

    from datamodules import FraEng
    from zoo.cli.fit import main as fit
    from zoo.core.checkpoint import load_task
    from zoo.core.io import read_yaml
    from zoo.tasks.seq2seq import Seq2Seq, detokenize

    recipe = ROOT / "configs" / "transformer_fra_eng_large.yaml"
    extra = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
             "--trainer.limit_test_batches", "1"] if smoke else []  # fmt: skip
    t0 = time.perf_counter()
    summary = fit(["--config", str(recipe), "--data.init_args.data_dir", str(data_dir), "--trainer.default_root_dir",
                   str(root), "--trainer.enable_progress_bar", "false", "--name", "large", *extra])  # fmt: skip
    wall = time.perf_counter() - t0
    best = summary["best_checkpoint"] or _newest_run(root / "large") / "checkpoints" / "last.ckpt"
    task = load_task(best, Seq2Seq).eval()
    data = FraEng(**read_yaml(recipe)["data"]["init_args"], data_dir=str(data_dir))
    data.setup()
    n = 64 if smoke else len(data._test)
    out: dict[str, Any] = {"wall_seconds": round(wall, 1), "train_seconds": summary["train_seconds"],
                           "epochs": summary["epochs"], "test_pairs": n}  # fmt: skip
    for beam in (1, 4):
        hyps, refs, sources = [], [], []
        for start in range(0, n, 256):
            src, src_len, _, _, ref = data._test.__getitems__(range(start, min(n, start + 256)))
            hyps += [detokenize(ids, task.tgt_vocab) for ids in task.translate_ids(src, src_len, beam)]
            refs += ref
            sources += [p[0] for p in data.splits()["test"][start : start + len(ref)]]
        out[f"sacrebleu_beam{beam}"] = round(float(SacreBLEUScore()(hyps, [[r] for r in refs])) * 100, 2)
        if beam == 4:
            out["examples"] = [{"source": s, "reference": r, "translation": h}
                               for s, r, h in list(zip(sources, refs, hyps, strict=True))[:10]]  # fmt: skip
    return out


def table(result: dict[str, Any]) -> str:
    lines = [f"{'arch':12} {'side':7} {'tokens/s':>10} {'seconds':>8} {'loss/token':>10} {'course-scale':>12}  "
             "BLEU go . | i lost . | he's calm . | i'm home ."]  # fmt: skip
    for arch, sides in result["archs"].items():
        for side in ("course", "zoo", "floor"):
            s = sides.get(side)
            if not s:
                continue
            per_token = s.get("loss_per_token")
            lines.append(f"{arch:12} {side:7} {s['tokens_per_second']:>10.1f} {s['seconds']:>8.1f} "
                         f"{'' if per_token is None else f'{per_token:.4f}':>10} "
                         f"{s['loss_course_scale'] or float('nan'):>12.4f}  {s['bleu']}")  # fmt: skip
        if "ratio" in sides:
            lines.append(f"{arch:12} ours / the course's loop, tokens per second: {sides['ratio']:.2f}x")
        if "floor_ratio" in sides:
            lines.append(f"{arch:12} the bare loop / the course's loop: {sides['floor_ratio']:.2f}x")
        c = COURSE[arch]
        lines.append(f"{arch:12} d2l-zh 2.0.0 printed (GPU): loss {c['loss']}, BLEU {c['bleu']}")
    if "large" in result:
        lg = result["large"]
        lines.append(f"large: {lg['epochs']} epochs, {lg['wall_seconds']} s wall ({lg['train_seconds']} s training); "
                     f"sacreBLEU greedy {lg['sacrebleu_beam1']}, beam 4 {lg['sacrebleu_beam4']} "
                     f"on {lg['test_pairs']} held-out pairs")  # fmt: skip
        lines += [f"  {e['source']} => {e['translation']}  (ref: {e['reference']})" for e in lg["examples"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", nargs="*", default=["seq2seq", "transformer"], help="seq2seq, bahdanau, transformer")
    p.add_argument("--data_dir", default=str(DATA), help="the folder of fra.txt")
    add_d2l_path(p, required=False)
    p.add_argument("--epochs", type=int, default=None, help="instead of the course's (300, 250, 200)")
    p.add_argument("--large", action="store_true", help="also train the large recipe")
    p.add_argument("--smoke", action="store_true", help="a few batches of everything: checks the script runs")
    p.add_argument("--floor", action="store_true", help="also time the bare loop around the same module")
    p.add_argument("--out", default="runs/bench/translation_bench.json", help="where the JSON goes")
    add_dry_run(p)
    args = p.parse_args(argv)
    sys.argv = sys.argv[:1]  # zoo.fit's LightningCLI gets its arguments as a list, not these
    use_d2l(args.d2l_path)
    require(data_dir=Path(args.data_dir) / "fra.txt")
    if args.dry_run:
        return dry_run_done(f"{', '.join(args.archs)} on {args.data_dir}")
    data_dir = Path(args.data_dir)
    max_batches = 3 if args.smoke else None
    result: dict[str, Any] = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                          "torch": torch.__version__, "threads": torch.get_num_threads()},
                              "smoke": args.smoke, "archs": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs:
            epochs = 1 if args.smoke else args.epochs or EPOCHS[arch]
            sides: dict[str, Any] = {"epochs": epochs}
            if args.d2l_path and arch != "bahdanau":
                sides["course"] = course_side(arch, epochs, data_dir, max_batches)
            sides["zoo"] = zoo_side(arch, epochs, data_dir, Path(tmp), max_batches)
            if args.floor:
                sides["floor"] = floor_side(arch, epochs, data_dir, max_batches)
            if "course" in sides:
                sides["ratio"] = round(sides["zoo"]["tokens_per_second"] / sides["course"]["tokens_per_second"], 3)
                if "floor" in sides:
                    sides["floor_ratio"] = round(sides["floor"]["tokens_per_second"]
                                                 / sides["course"]["tokens_per_second"], 3)  # fmt: skip
            result["archs"][arch] = sides
        if args.large:
            result["large"] = large(data_dir, Path(tmp), args.smoke)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(table(result))
    return result


if __name__ == "__main__":
    run_command(main)
