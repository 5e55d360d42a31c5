"""The fra-eng data module (datamodules/translation.py) on small files in manythings' layout."""

import pytest
import torch

from datamodules.text import Vocab
from datamodules.translation import FraEng, encode, parse_pairs, preprocess_nmt

LINES = [
    "Go.\tVa !",
    "Hi.\tSalut !",
    "Run!\tCours\u202f!",
    "Run!\tCourez\u202f!",
    "Who?\tQui ?",
    "Wow!\tÇa alors\u202f!",
    "I lost.\tJ'ai perdu.",
    "He's calm.\tIl est calme.",
    "I'm home.\tJe suis chez moi.",
    "Go.\tBouge !",
]


def write_fra(folder, n_extra=40, lines=LINES):
    """``fra.txt`` with ``lines`` first, then ``n_extra`` generated pairs of distinct sources."""
    extra = [f"Tom has {i} cats, I think.\tTom a {i} chats, je crois." for i in range(n_extra)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fra.txt").write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    return folder


def test_course_preprocessing():
    assert preprocess_nmt("Cours\u202f!") == "cours !"
    assert preprocess_nmt("Hi.\xa0Wow!") == "hi . wow !"
    assert preprocess_nmt("I lost.") == "i lost ."
    assert preprocess_nmt("Wait, what ?") == "wait , what ?"  # a space already there: none added
    assert preprocess_nmt("3.5") == "3 .5"  # as the course: every . after a non-space


def test_bad_lines_are_reported_with_their_numbers():
    lines = ["Go.\tVa !", "no tab here", "Hi.\t", "\tSalut !", "", "Run!\tCours !\tCC-BY 2.0 (France)"]
    with pytest.raises(ValueError, match=r"3 line\(s\).*line 2, 3, 4$"):
        parse_pairs("\n".join(lines), "fra.txt")
    assert parse_pairs(f"{lines[0]}\r\n{lines[5]}\n") == [("go .", "va !"), ("run !", "cours !")]


def test_encode_truncates_pads_and_counts_valid_tokens():
    vocab = Vocab([["a", "b", "c"]], reserved_tokens=("<pad>", "<bos>", "<eos>"))
    pad, eos = vocab["<pad>"], vocab["<eos>"]
    rows, lens = encode([["a"], ["a", "b", "c", "a"]], vocab, num_steps=3)
    assert rows.tolist() == [[vocab["a"], eos, pad], [vocab["a"], vocab["b"], vocab["c"]]]
    assert lens.tolist() == [2, 3]  # the cut row has lost its <eos>, as in the course
    rows, lens = encode([["a"], ["a", "b", "c", "a"]], vocab, num_steps=None)
    assert rows.shape == (2, 5) and lens.tolist() == [2, 5] and int(rows[1, 4]) == eos


def test_fra_eng_reads_the_file_with_the_course_settings(tmp_path):
    write_fra(tmp_path / "fra-eng")
    dm = FraEng(data_dir=str(tmp_path), batch_size=4, num_steps=5, num_examples=10, val_size=6, test_size=5)
    train = dm.splits()["train"]
    assert train[:3] == [("go .", "va !"), ("hi .", "salut !"), ("run !", "cours !")]
    src, tgt = dm.src_vocab, dm.tgt_vocab
    assert src.idx_to_token[:4] == ["<unk>", "<pad>", "<bos>", "<eos>"]
    assert "go" in src and "run" in src and "hi" not in src  # min_freq 2 over the training pairs
    assert dm.vocab_size == (len(src), len(tgt))
    dm.setup()
    assert dm._train.tensors[0].shape == dm._train.tensors[2].shape == (10, 5)  # num_steps
    x, x_len, y, y_len = next(iter(dm.train_dataloader()))
    assert x.shape == (4, int(x_len.max())) and y.shape == (4, int(y_len.max())) and x.dtype == torch.long
    assert torch.equal(x_len, (x != src["<pad>"]).sum(1))
    first = next(iter(dm.val_dataloader()))
    assert len(first) == 5 and isinstance(first[4], list) and isinstance(first[4][0], str)


def test_held_out_pairs_are_outside_the_training_pairs(tmp_path):
    # every training source appears again later in the file with another translation
    lines = [f"Sentence {i}.\tPhrase {i}." for i in range(30)]
    lines += [f"Sentence {i}.\tUne autre phrase {i}." for i in range(30)]
    write_fra(tmp_path, n_extra=50, lines=lines)
    for select in ("first", "random"):
        dm = FraEng(data_dir=str(tmp_path), num_examples=30, select=select, val_size=20, test_size=20, seed=3)
        splits = dm.splits()
        train_src = {s for s, _ in splits["train"]}
        held = splits["val"] + splits["test"]
        assert len(held) == len(set(held)) == 40
        assert not train_src & {s for s, _ in held}
        again = FraEng(data_dir=str(tmp_path), num_examples=30, select=select, val_size=20, test_size=20, seed=3)
        assert again.splits() == splits  # seeded
    other = FraEng(data_dir=str(tmp_path), num_examples=30, val_size=20, test_size=20, seed=4).splits()
    assert other["val"] != splits["val"]


def test_held_out_rows_are_never_cut_and_carry_the_references(tmp_path):
    write_fra(tmp_path)
    dm = FraEng(data_dir=str(tmp_path), batch_size=8, num_steps=3, num_examples=10, val_size=8, test_size=8)
    dm.setup()
    src, src_len, tgt, tgt_len, refs = next(iter(dm.val_dataloader()))
    assert src.shape[1] > 3 and int(tgt_len.max()) == tgt.shape[1]
    for row, n, ref in zip(tgt, tgt_len, refs, strict=True):
        assert len(ref.split()) + 1 == int(n)  # every word and <eos>
        assert int(row[n - 1]) == dm.tgt_vocab["<eos>"]


def test_too_few_pairs_and_missing_file_are_explained(tmp_path, monkeypatch):
    write_fra(tmp_path, n_extra=5)
    with pytest.raises(ValueError, match="only .* pairs are left"):
        FraEng(data_dir=str(tmp_path), num_examples=10, val_size=10, test_size=10).splits()
    monkeypatch.chdir(tmp_path)  # so the project's ../shared copy is not found
    with pytest.raises(FileNotFoundError, match=r"fra\.txt in one of: .*nowhere.*fra-eng\.zip"):
        FraEng(data_dir=str(tmp_path / "nowhere")).prepare_data()
    (tmp_path / "fra.txt").write_bytes(b"Go.\tVa \xff!\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        FraEng(data_dir=str(tmp_path)).splits()
