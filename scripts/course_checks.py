"""The rows of docs/REPRODUCTION.md that are not a ``zoo.fit`` run: the course's printed tensors
recomputed by the zoo's ops, and what the course does with a trained model (translate, generate,
find similar words). ``scripts/reproduce.py`` calls ``CHECKS[entry["check"]](entry, context)``;
``context`` holds ``data_root``, ``out`` (a folder for the check's files) and, for a row that
``needs`` another, ``run_dir``: that row's trained run. Each returns ``{"value": float | None,
"show": str}``: the row's number on the course's scale and what the table shows beside it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from datamodules import NadarayaWatsonData
from zoo.core.errors import ConfigError
from zoo.models.registry import create_model
from zoo.ops.boxes import anchor_boxes, multibox_detection, multibox_target

# the course's worked examples (zh.d2l.ai 13.4) and what it prints for them
DOG_CAT = torch.tensor([[0.1, 0.08, 0.52, 0.92], [0.55, 0.2, 0.9, 0.88]])  # ground truth: dog (0), cat (1)
FIVE_ANCHORS = torch.tensor([[0, 0.1, 0.2, 0.3], [0.15, 0.2, 0.4, 0.4], [0.63, 0.05, 0.88, 0.98],
                             [0.66, 0.45, 0.8, 0.8], [0.57, 0.3, 0.92, 0.9]])  # fmt: skip
PRINTED_CLASSES = [0, 1, 2, 0, 2]
PRINTED_MASK = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]
PRINTED_OFFSETS = [-0.0, -0.0, -0.0, -0.0, 1.40, 10.0, 2.59, 7.18, -1.20, 0.269, 1.68, -1.57,
                   -0.0, -0.0, -0.0, -0.0, -0.571, -1.00, 4.17e-06, 0.626]  # fmt: skip
NMS_ANCHORS = torch.tensor([[0.1, 0.08, 0.52, 0.92], [0.08, 0.2, 0.56, 0.95],
                            [0.15, 0.3, 0.62, 0.91], [0.55, 0.2, 0.9, 0.88]])  # fmt: skip
NMS_PROBS = torch.tensor([[0.0] * 4, [0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.9]])  # (background, dog, cat) x anchor
PRINTED_NMS = [[0, 0.90, 0.10, 0.08, 0.52, 0.92], [1, 0.90, 0.55, 0.20, 0.90, 0.88],
               [-1, 0.80, 0.08, 0.20, 0.56, 0.95], [-1, 0.70, 0.15, 0.30, 0.62, 0.91]]  # fmt: skip
# the course's four test sentences (zh.d2l.ai 9.7) and their references
ENGLISH = ["go .", "i lost .", "he's calm .", "i'm home ."]
FRENCH = ["va !", "j'ai perdu .", "il est calme .", "je suis chez moi ."]


def differ(ours: Sequence[float], printed: Sequence[float], decimals: int | None = None, sig: int | None = None) -> int:
    """How many printed entries ours misses by more than half a unit of the printed last digit
    (``decimals`` places, or ``sig`` significant digits); a printed value under 1e-4 is float
    noise around 0 (``-0.00e+00``, ``4.17e-06``) and matches anything that small."""
    if len(ours) != len(printed):
        return max(len(ours), len(printed))
    bad = 0
    for o, p in zip(ours, printed, strict=True):
        if abs(p) < 1e-4:
            bad += abs(o) >= 1e-4
            continue
        half = 0.5 * 10.0 ** (math.floor(math.log10(abs(p))) - sig + 1 if sig else -decimals)
        bad += abs(o - p) > half * (1 + 1e-6)
    return bad


def anchor_boxes_check(entry: dict, context: dict) -> dict:
    h, w = 561, 728  # the course's catdog.jpg
    anchors = anchor_boxes((h, w), sizes=[0.75, 0.5, 0.25], ratios=[1, 2, 0.5])
    shape = [1, *anchors.shape]
    box = anchors.reshape(h, w, 5, 4)[250, 250, 0].tolist()
    bad = differ(shape, [1, 2042040, 4], decimals=0) + differ(box, [0.06, 0.07, 0.63, 0.82], decimals=2)
    return {
        "value": float(bad),
        "show": f"shape {tuple(shape)}; boxes[250, 250, 0] = [{', '.join(f'{v:.2f}' for v in box)}]",
    }


def anchor_labels_check(entry: dict, context: dict) -> dict:
    t = multibox_target(FIVE_ANCHORS, [DOG_CAT], [torch.tensor([0, 1])])
    classes, mask, offsets = t.classes[0].tolist(), t.masks[0].flatten().tolist(), t.offsets[0].flatten().tolist()
    bad = (
        differ(classes, PRINTED_CLASSES, decimals=0)
        + differ(mask, PRINTED_MASK, decimals=0)
        + differ(offsets, PRINTED_OFFSETS, sig=3)
    )
    return {
        "value": float(bad),
        "show": f"classes {classes}; offsets [{', '.join(f'{v:.3g}' for v in offsets[4:12])}, ...]",
    }


def anchor_nms_check(entry: dict, context: dict) -> dict:
    det = multibox_detection(NMS_PROBS.T[None], torch.zeros(1, 4, 4), NMS_ANCHORS, nms_threshold=0.5)[0]
    rows = [[int(c), float(s), *b] for c, s, b in zip(det["labels"], det["scores"], det["boxes"].tolist(), strict=True)]
    kept = (
        torch.cdist(NMS_ANCHORS, det["boxes"]).min(1).values < 1e-5 if len(rows) else torch.zeros(4, dtype=torch.bool)
    )
    scores, _ = NMS_PROBS[1:].max(0)  # the suppressed anchors, marked -1 as the course prints them
    rows += [[-1, float(s), *b] for s, b, k in zip(scores, NMS_ANCHORS.tolist(), kept, strict=True) if not k]
    rows.sort(key=lambda r: (r[0] == -1, -r[1], r[2:]))
    printed = sorted(PRINTED_NMS, key=lambda r: (r[0] == -1, -r[1], r[2:]))
    bad = sum(differ(o, p, decimals=2) for o, p in zip(rows, printed, strict=False)) + 6 * abs(len(rows) - len(printed))
    return {"value": float(bad), "show": "; ".join("[" + ", ".join(f"{v:.2f}" for v in r) + "]" for r in rows)}


def nadaraya_watson_check(entry: dict, context: dict) -> dict:
    """The fixed Gaussian kernel on the course's data (the parametric recipe's seed-0 draw): the
    parametric row's loss at w = 1."""
    data = NadarayaWatsonData(seed=42)
    data.setup()
    model = create_model("nadaraya_watson", parametric=False)
    with torch.no_grad():
        (x, y), (xt, yt) = data._train.tensors, data._val.tensors
        train_sse, test_sse = float(((model(x) - y) ** 2).sum()), float(((model(xt) - yt) ** 2).sum())
    return {
        "value": train_sse,
        "show": f"summed squared error against the true curve at the 50 test points: {test_sse:.3f}",
    }


def checkpoint(run_dir: Path) -> Path:
    """The checkpoint the run tested (metrics.json's best_checkpoint), else its last."""
    best = json.loads((run_dir / "metrics.json").read_text()).get("best_checkpoint")
    path = Path(best) if best else run_dir / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the checkpoint of {run_dir} is missing")
    return path


def translate_check(entry: dict, context: dict) -> dict:
    from zoo.core.checkpoint import load_task
    from zoo.tasks.seq2seq import Seq2Seq, translate

    task = load_task(checkpoint(context["run_dir"]), Seq2Seq).eval()
    results = translate(task, ENGLISH, beam=int(entry.get("check_args", {}).get("beam", 1)), references=FRENCH)
    bleus = [r.bleu for r in results]
    return {"value": sum(bleus) / len(bleus),
            "show": "; ".join(f"{r.source} => {r.translation} ({r.bleu:.3f})" for r in results)}  # fmt: skip


def generate_check(entry: dict, context: dict) -> dict:
    from zoo.core.checkpoint import load_task
    from zoo.tasks.language_model import LanguageModel, generate

    a = entry.get("check_args", {})
    task = load_task(context["run_dir"] / "checkpoints" / "last.ckpt", LanguageModel).eval()
    prefix = a.get("prefix", "time traveller")
    text = generate(task.model, task.vocab, task.tokenizer, prefix, int(a.get("num_tokens", 50)))
    return {"value": float(len(set(text[len(prefix) :]))), "show": f"'{text}'"}


def similar_check(entry: dict, context: dict) -> dict:
    from zoo.core.checkpoint import load_task
    from zoo.tasks.word2vec import Word2Vec, nearest_words

    a = entry.get("check_args", {})
    task = load_task(context["run_dir"] / "checkpoints" / "last.ckpt", Word2Vec).eval()
    near = nearest_words(task.model, task.vocab, [a.get("word", "chip")], int(a.get("k", 3)))[0]
    return {"value": near[0][1], "show": f"{a.get('word', 'chip')}: " + ", ".join(f"{w} {c:.3f}" for w, c in near)}


def style_transfer_check(entry: dict, context: dict) -> dict:
    from zoo.cli import style_transfer

    folder = context["data_root"] / entry["data"]
    out = style_transfer.main(["--content", str(folder / "rainier.jpg"), "--style", str(folder / "autumn-oak.jpg"),
                               "--weights", str(folder / style_transfer.VGG19_FILE), "--no_progress",
                               "--out", str(context["out"] / "style_transfer.png")])  # fmt: skip
    final = {k: v[-1] for k, v in out["history"].items()}
    return {"value": float(sum(final.values())), "show": ", ".join(f"{k} {v:.4g}" for k, v in final.items())}


def needs_only(entry: dict, context: dict) -> dict:
    """A row whose data is here but whose run the zoo cannot make yet: say so, do not pretend."""
    raise ConfigError(f"{entry['id']}: the data is here, but the row has no recipe yet ({entry.get('note', '')})")


CHECKS: dict[str, Callable[[dict, dict], dict]] = {
    "anchor_boxes": anchor_boxes_check,
    "anchor_labels": anchor_labels_check,
    "anchor_nms": anchor_nms_check,
    "nadaraya_watson": nadaraya_watson_check,
    "translate": translate_check,
    "generate": generate_check,
    "similar": similar_check,
    "style_transfer": style_transfer_check,
    "needs_only": needs_only,
}
