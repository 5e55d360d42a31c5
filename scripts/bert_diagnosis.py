"""What a pretrained BERT hands to SNLI fine-tuning, measured without training: how much of the
SNLI pairs its vocabulary reads as ``<unk>``, and how far apart its ``<cls>`` encodings and its
pooler's outputs (``hidden``, the ``Linear + tanh`` the new head reads) are across pairs.

A pretrained encoder that maps every pair to the same ``<cls>`` vector (standard deviation over
pairs near 0) leaves the head nothing to tell pairs apart with; a saturated pooler (``|tanh|``
near 1) passes almost no gradient back to the encoder.

    python -m scripts.bert_diagnosis runs/bert_pretrain_wikitext2/version_0/checkpoints/last.ckpt
    python -m scripts.bert_diagnosis bert.small.torch.zip --data_dir ../shared/data/snli_subset
"""

from __future__ import annotations

import argparse
import json

import torch

from datamodules import SNLI
from zoo.run.errors import run_command
from zoo.tasks.nli import NLI


def diagnose(pretrained: str, data_dir: str, pairs: int = 256) -> dict[str, float]:
    task = NLI(arch="bert_classifier", pretrained=pretrained).eval()
    dm = SNLI(data_dir=data_dir, format="bert", vocab_from=pretrained, train_split="dev", val_fraction=0.1,
              max_len=128, download=False)  # fmt: skip
    train = dm.examples()["train"]
    tokens = [t for p, h, _ in train for t in (*p, *h)]
    unk = sum(t not in dm.vocab for t in tokens) / len(tokens)
    x = dm.encode([(p, h) for p, h, _ in train[:pairs]])
    with torch.no_grad():
        cls = task.model.encoder(*x[:3])[:, 0]  # (B, H)
        pooled = task.model.hidden(cls)  # (B, H)
    return {
        "vocab_size": len(dm.vocab),
        "unk_fraction_of_train_tokens": round(unk, 4),
        "cls_std_over_pairs": float(cls.std(0).mean()),
        "pooled_std_over_pairs": float(pooled.std(0).mean()),
        "pooled_saturated_fraction": float((pooled.abs() > 0.99).float().mean()),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pretrained", help="a BERTPretrain checkpoint or the course's bert.small/bert.base zip or folder")
    p.add_argument("--data_dir", default="data", help="SNLI's folder (default: the project's subset when not there)")
    p.add_argument("--pairs", type=int, default=256, help="training pairs whose encodings are compared")
    args = p.parse_args(argv)
    result = diagnose(args.pretrained, args.data_dir, args.pairs)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    run_command(main)
