"""``python -m zoo similar``: the nearest words of a trained word2vec model, by the cosine
similarity of their centre vectors (the course's ``get_similar_tokens``, book section 14.4).

    python -m zoo similar --ckpt_path runs/word2vec_ptb/version_0/checkpoints/last.ckpt chip intel [--k 3]

prints one line per word: ``chip: intel 0.717, microprocessor 0.699, chips 0.680``.
"""

from __future__ import annotations

import argparse
import warnings

from zoo.core.checkpoint import checkpoint_file, load_task
from zoo.core.errors import ConfigError
from zoo.core.options import number
from zoo.run.errors import run_command
from zoo.tasks.word2vec import Word2Vec, nearest_words


def main(argv: list[str] | None = None) -> dict[str, list[tuple[str, float]]]:
    p = argparse.ArgumentParser(description="The nearest words of a trained word2vec model.")
    p.add_argument("--ckpt_path", required=True)
    p.add_argument("words", nargs="+", help="words to look up")
    p.add_argument("--k", type=number(int, 1), default=3, help="nearest words per word (default 3)")
    p.add_argument("--dry_run", action="store_true", help="load and check the inputs, then stop")
    args = p.parse_args(argv)
    if args.k < 1:
        raise ConfigError(f"--k must be at least 1, got {args.k}")
    task = load_task(checkpoint_file(args.ckpt_path, "--ckpt_path"), Word2Vec).eval()
    known = [w for w in args.words if w in task.vocab]
    unknown = [w for w in args.words if w not in task.vocab]
    if not known:
        raise ConfigError(f"none of {', '.join(map(repr, args.words))} is in the model's vocabulary of "
                         f"{len(task.vocab)} words (e.g. {', '.join(task.vocab.idx_to_token[1:9])})")  # fmt: skip
    if unknown:
        warnings.warn(f"not in the model's vocabulary, skipped: {', '.join(map(repr, unknown))}", stacklevel=2)
    if args.dry_run:
        return print(f"dry run: {args.ckpt_path} holds {len(task.vocab)} words; {len(known)} to look up")
    result = dict(zip(known, nearest_words(task.model, task.vocab, known, args.k), strict=True))
    for word, near in result.items():
        print(f"{word}: " + ", ".join(f"{n} {c:.3f}" for n, c in near))
    return result


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo similar``)."""
    run_command(lambda: main(argv))


if __name__ == "__main__":
    run()
