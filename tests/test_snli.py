"""SNLI: both on-disk layouts (SNLI 1.0's tab-separated .txt and its .jsonl), '-' rows dropped and
counted, bad rows named by file and line, and the two batch formats."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from datamodules import SNLI
from datamodules.snli import read_snli
from datamodules.text import Vocab
from zoo.core.problems import DataError

HEADER = ("gold_label sentence1_binary_parse sentence2_binary_parse sentence1_parse sentence2_parse sentence1 "
          "sentence2 captionID pairID label1 label2 label3 label4 label5").split()  # fmt: skip
SUBJECTS = ["a man", "a woman", "two dogs", "the kids", "a girl", "an old man"]
VERBS = ["runs", "sleeps", "eats", "sings", "swims", "reads"]


def binary_parse(sentence: str) -> str:
    """A sentence as SNLI's binary parse writes it: ``( ( A man ) ( runs . ) )``."""
    *words, last = sentence.split()
    return f"( ( {' '.join(words)} ) ( {last} . ) )"


def make_rows(n: int, seed: int = 0, dashes: int = 0) -> list[dict]:
    """Pairs whose label follows from the words: the same verb entails, another contradicts, a
    hypothesis about someone else is neutral; the first ``dashes`` rows have gold label '-'."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        s, v = rng.randrange(len(SUBJECTS)), rng.randrange(len(VERBS))
        label = rng.choice(["entailment", "contradiction", "neutral"])
        s2 = s if label != "neutral" else (s + 1) % len(SUBJECTS)
        v2 = v if label != "contradiction" else (v + 1) % len(VERBS)
        premise, hypothesis = f"{SUBJECTS[s]} {VERBS[v]}".capitalize(), f"{SUBJECTS[s2]} {VERBS[v2]}".capitalize()
        rows.append({"annotator_labels": [label], "captionID": f"{i}.jpg#0", "gold_label": "-" if i < dashes else label,
                     "pairID": f"{i}r", "sentence1": premise + ".", "sentence1_binary_parse": binary_parse(premise),
                     "sentence1_parse": f"(ROOT (S {premise}))", "sentence2": hypothesis + ".",
                     "sentence2_binary_parse": binary_parse(hypothesis),
                     "sentence2_parse": f"(ROOT (S {hypothesis}))"})  # fmt: skip
    return rows


def write_jsonl(path: Path, rows: list[dict], final_newline: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in rows) + ("\n" if final_newline else ""), encoding="utf-8")
    return path


def write_txt(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(HEADER)]
    for r in rows:
        labels = r["annotator_labels"] + [""] * 4
        lines.append("\t".join([r[c] for c in HEADER[:9]] + labels))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_snli(folder: Path, sizes: dict[str, int], layout: str = "jsonl", dashes: int = 2) -> Path:
    """``snli_1.0/snli_1.0_<split>.<layout>`` files as the SNLI 1.0 zip holds them."""
    for k, (split, n) in enumerate(sizes.items()):
        rows = make_rows(n, seed=k, dashes=dashes)
        path = folder / "snli_1.0" / f"snli_1.0_{split}.{layout}"
        write_jsonl(path, rows) if layout == "jsonl" else write_txt(path, rows)
    return folder


@pytest.mark.parametrize("layout", ["jsonl", "txt"])
def test_both_layouts_read_the_same_examples(tmp_path, layout):
    path = write_snli(tmp_path, {"dev": 30}, layout, dashes=3) / "snli_1.0" / f"snli_1.0_dev.{layout}"
    examples, dropped = read_snli(path)
    assert dropped == 3 and len(examples) == 27
    rows = make_rows(30, seed=0, dashes=3)[3:]
    for (premise, hypothesis, label), row in zip(examples, rows, strict=True):
        assert premise == row["sentence1"].lower().replace(".", " .").split()  # brackets gone, lower case
        assert hypothesis == row["sentence2"].lower().replace(".", " .").split()
        assert label == ["entailment", "contradiction", "neutral"].index(row["gold_label"])


def test_jsonl_bad_rows_are_named_by_file_and_line(tmp_path):
    rows = make_rows(6)
    rows[2]["gold_label"] = "maybe"
    del rows[4]["sentence2_binary_parse"], rows[4]["sentence2"]
    path = write_jsonl(tmp_path / "snli_1.0_dev.jsonl", rows)
    path.write_text(path.read_text().replace('{"annotator', "{oops", 1), encoding="utf-8")  # line 1: broken JSON
    with pytest.raises(DataError) as e:
        read_snli(path)
    message = str(e.value)
    assert str(path) in message and "3 problems" in message
    assert "not a JSON object; lines: 1\n" in message and "or -; lines: 3 ('maybe')" in message
    assert "no sentence1 or sentence2; lines: 5\n" in message


def test_txt_bad_rows_and_header_are_named(tmp_path):
    path = write_txt(tmp_path / "snli_1.0_test.txt", make_rows(4))
    lines = path.read_text().split("\n")
    lines[3] = "neutral\tonly two fields"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match=r"snli_1.0_test.txt: fewer than 9 tab-separated fields; lines: 4$"):
        read_snli(path)
    path.write_text("label\tpremise\thypothesis\nneutral\ta\tb\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: the header lacks gold_label, sentence1_binary_parse"):
        read_snli(path)


def test_pair_batches_and_the_training_vocabulary(tmp_path):
    write_snli(tmp_path, {"dev": 40, "test": 20})
    dm = SNLI(data_dir=str(tmp_path), train_split="dev", val_fraction=0.25, max_len=6, min_freq=1, batch_size=4,
              download=False)  # fmt: skip
    dm.setup()
    assert dm.dropped == {"dev": 2, "test": 2} and len(dm._train) == 28 and len(dm._val) == 10 and len(dm._test) == 18
    assert dm.vocab.idx_to_token[:2] == ["<unk>", "<pad>"] and "man" in dm.vocab and dm.num_classes == 3
    premises, hypotheses, labels = dm._train.__getitems__([0, 1])
    examples = dm.examples()["train"][:2]
    assert premises.shape == (2, max(len(p) for p, _, _ in examples)) and labels.shape == (2,)
    assert hypotheses.shape == (2, max(len(h) for _, h, _ in examples))
    first = examples[0][0]
    assert dm.vocab.to_tokens(premises[0].tolist()) == first + ["<pad>"] * (premises.shape[1] - len(first))
    long = SNLI(data_dir=str(tmp_path), train_split="dev", max_len=3, min_freq=1, val_fraction=0.25, download=False)
    long.setup()
    assert long._train.__getitems__([0, 1])[0].shape == (2, 3)  # cut to max_len


def test_validation_holds_out_whole_premises(tmp_path):
    write_snli(tmp_path, {"dev": 120, "test": 10})  # 34 premises, most of them in several pairs
    examples = SNLI(data_dir=str(tmp_path), train_split="dev", val_fraction=0.25, download=False).examples()
    train, val = ({tuple(p) for p, _, _ in examples[s]} for s in ("train", "val"))
    assert len(train) + len(val) == 34 and len(val) == 8 and not train & val
    assert len(examples["train"]) + len(examples["val"]) == 118 and len(examples["val"]) > len(val)


def test_bert_batches_use_the_checkpoint_vocabulary(tmp_path):
    write_snli(tmp_path, {"dev": 20, "test": 10}, layout="txt")
    words = "<pad> <mask> <cls> <sep> a man woman runs sleeps .".split()
    vocab = Vocab(reserved_tokens=words)
    torch.save({"vocab": vocab.to_dict(), "state_dict": {}}, tmp_path / "pretrained.ckpt")
    own = SNLI(data_dir=str(tmp_path), format="bert", train_split="dev", val_split="test", min_freq=1)
    assert own.vocab.idx_to_token[:5] == ["<unk>", "<pad>", "<mask>", "<cls>", "<sep>"] and "man" in own.vocab
    dm = SNLI(data_dir=str(tmp_path), format="bert", vocab_from=str(tmp_path / "pretrained.ckpt"), train_split="dev",
              val_split="test", max_len=7, download=False)  # fmt: skip
    dm.setup()
    assert dm.vocab == vocab and dm.vocab_size == len(words) + 1
    tokens, segments, valid_lens, labels = dm._train.__getitems__(list(range(len(dm._train))))
    assert tokens.shape[1] == int(valid_lens.max()) <= 7
    row = dm.vocab.to_tokens(tokens[0, : int(valid_lens[0])].tolist())
    assert row[0] == "<cls>" and row[-1] == "<sep>" and row.count("<sep>") == 2
    cut = row.index("<sep>")
    assert segments[0, : cut + 1].sum() == 0 and segments[0, cut + 1 : int(valid_lens[0])].eq(1).all()
    assert segments[0, int(valid_lens[0]) :].sum() == 0
    premise, hypothesis = dm.examples()["train"][0][:2]
    assert len(premise) + len(hypothesis) > 4  # so the pair was trimmed, the longer sentence first
    assert row[1:cut] == [w if w in vocab else "<unk>" for w in premise][: cut - 1]


def test_the_project_subset_is_found_when_present():
    shared = Path(__file__).parents[2] / "shared" / "data" / "snli_subset" / "snli_1.0" / "snli_1.0_dev.jsonl"
    if not shared.is_file():
        pytest.skip("no ../shared/data (a fresh clone)")
    examples, dropped = read_snli(shared)
    assert (len(examples), dropped) == (1273, 16)
