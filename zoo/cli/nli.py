"""``python -m zoo nli``: entailment, contradiction or neutral for a premise and a hypothesis.

    python -m zoo nli --ckpt_path runs/bert_snli/version_0/checkpoints/last.ckpt \\
        "A man is playing a guitar on stage." "A person is making music."

The checkpoint is an ``NLI`` task (fine-tuned BERT or decomposable attention); the sentences get
the training data's reading (lower case, punctuation apart) and its input format. Prints the
label and its probability (``entailment 0.871``); ``--all`` prints the three probabilities.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import torch

from datamodules.snli import encode_bert, encode_pair, tokenize_sentence
from zoo.core.checkpoint import load_task
from zoo.core.errors import ConfigError
from zoo.run.errors import run_command
from zoo.tasks.nli import LABELS, NLI


@dataclass
class Inference:
    label: str
    probability: float
    probabilities: dict[str, float]


@torch.no_grad()
def infer(task: NLI, premise: str, hypothesis: str) -> Inference:
    pair = (tokenize_sentence(premise), tokenize_sentence(hypothesis))
    empty = [name for name, words in zip(("premise", "hypothesis"), pair, strict=True) if not words]
    if empty:
        raise ConfigError(f"the {' and the '.join(empty)} is empty")
    unknown = sorted({w for words in pair for w in words if w not in task.vocab})
    if unknown:
        print(f"note: not in the vocabulary, read as <unk>: {', '.join(unknown)}", file=sys.stderr)
    encode = encode_bert if task.input_format == "bert" else encode_pair
    probs = task.model(*encode([pair], task.vocab, task.max_len)).softmax(-1)[0]  # (num_classes,)
    k = int(probs.argmax())
    return Inference(LABELS[k], float(probs[k]), {name: float(p) for name, p in zip(LABELS, probs, strict=True)})


def main(argv: list[str] | None = None) -> Inference:
    p = argparse.ArgumentParser(description="Natural language inference with a trained NLI checkpoint.")
    p.add_argument("premise")
    p.add_argument("hypothesis")
    p.add_argument("--ckpt_path", required=True)
    p.add_argument("--all", action="store_true", help="print the probability of every label")
    p.add_argument("--dry_run", action="store_true", help="load and check the inputs, then stop")
    args = p.parse_args(argv)
    task = load_task(args.ckpt_path, NLI).eval()
    if args.dry_run:
        return print(f"dry run: {args.ckpt_path} holds an NLI model")
    result = infer(task, args.premise, args.hypothesis)
    print(f"{result.label} {result.probability:.3f}")
    if args.all:
        for name, prob in result.probabilities.items():
            print(f"  {name} {prob:.3f}")
    return result


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo nli``)."""
    run_command(lambda: main(argv))


if __name__ == "__main__":
    run()
