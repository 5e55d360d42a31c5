"""``python -m zoo translate``: translate sentences with a trained seq2seq checkpoint.

    python -m zoo translate --ckpt_path runs/transformer_fra_eng/version_0/checkpoints/last.ckpt \\
        "go ." "i lost ." "he's calm ." "i'm home ." [--beam 4] \\
        [--references "va !" "j'ai perdu ." "il est calme ." "je suis chez moi ."] [--attention_png att.png]

Sentences come as arguments or, with ``--file``, one per line; they get the training data's
preprocessing (lower case, a space before ``,.!?``). Words the source vocabulary lacks are read as
``<unk>``, with a note. With references (``--references`` or ``--references_file``, one per
sentence) each line also gets the course's BLEU (k=2); ``--attention_png`` draws, per sentence,
the decoder's attention over the source (``bahdanau``, ``transformer``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datamodules.base import read_text
from zoo.core.checkpoint import load_task
from zoo.core.errors import ConfigError
from zoo.core.io import save_figure, subplots
from zoo.core.options import number
from zoo.core.problems import DataError
from zoo.run.errors import run_command
from zoo.tasks.seq2seq import Seq2Seq, Translation, translate

#: the most tokens a translation may be given (the course's sentences have fewer than 20)
MAX_LEN = 1000


def _read_lines(path: str, what: str) -> list[str]:
    """The lines of a ``--file`` or ``--references_file``: UTF-8 text with at least one line."""
    lines = read_text(path).splitlines() if Path(path).is_file() else None
    if lines is None:
        raise DataError(f"{what} {path}", ["no such file" if not Path(path).is_dir() else "a folder, expected a file"])
    if not any(line.strip() for line in lines):
        raise DataError(f"{what} {path}", ["empty file; expected one sentence a line"])
    return lines


def plot_attention(results: list[Translation], path: str | Path) -> Path:
    fig, axes = subplots(1, len(results), figsize=(3.2 * len(results), 3.4), squeeze=False)
    for ax, r in zip(axes[0], results, strict=True):
        ax.imshow(r.attention.numpy(), cmap="Reds", vmin=0, vmax=1)
        ax.set_xticks(range(r.attention.shape[1]), [*r.source.split(), "<eos>"], rotation=90)
        ax.set_yticks(range(r.attention.shape[0]), [*r.translation.split(), "<eos>"])
        ax.set_xlabel("source")
    axes[0][0].set_ylabel("translation")
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> list[Translation]:
    p = argparse.ArgumentParser(description="Translate sentences with a trained seq2seq model.")
    p.add_argument("sentences", nargs="*", help="sentences to translate")
    p.add_argument("--ckpt_path", required=True)
    p.add_argument("--file", help="a file of sentences, one per line (instead of arguments)")
    p.add_argument("--beam", type=number(int, 1), default=1,
                   help="beam width (1: greedy, the default; capped at the target vocabulary's size)")
    p.add_argument("--max_len", type=number(int, 1, MAX_LEN), default=None,
                   help=f"most tokens per translation, 1 to {MAX_LEN} (default: the task's)")  # fmt: skip
    p.add_argument("--references", nargs="*", help="one reference translation per sentence")
    p.add_argument("--references_file", help="a file of references, one per line")
    p.add_argument("--attention_png", help="write the attention heat maps here")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dry_run", action="store_true", help="load and check the inputs, then stop")
    args = p.parse_args(argv)
    if bool(args.file) == bool(args.sentences):
        raise ConfigError("give the sentences as arguments or --file, one of the two")
    sentences = _read_lines(args.file, "--file") if args.file else args.sentences
    references = _read_lines(args.references_file, "--references_file") if args.references_file else args.references
    task = load_task(args.ckpt_path, Seq2Seq).to(args.device).eval()
    if args.dry_run:
        return print(f"dry run: {args.ckpt_path} holds a seq2seq model; {len(sentences)} sentences")
    beam = min(args.beam, len(task.tgt_vocab))
    if beam < args.beam:
        print(f"note: --beam {args.beam} is more than the {beam} target tokens; searching with {beam}", file=sys.stderr)
    results = translate(task, sentences, beam, args.max_len, references, bool(args.attention_png))
    for r in results:
        print(f"{r.source} => {r.translation}" + ("" if r.bleu is None else f", bleu {r.bleu:.3f}"))
    if args.attention_png:
        print(f"attention: {plot_attention(results, args.attention_png)}", file=sys.stderr)
    return results


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo translate``)."""
    run_command(lambda: main(argv))


if __name__ == "__main__":
    run()
