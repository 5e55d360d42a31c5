"""What a task keeps of its data (ZooTask.data_state): copied from the data module in setup,
checked against the model's vocab_size, stored in and restored from a checkpoint."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from datamodules.text import Vocab
from zoo.tasks import Seq2Seq


def _with_data(monkeypatch, data) -> None:
    monkeypatch.setattr(Seq2Seq, "trainer", property(lambda self: SimpleNamespace(datamodule=data)))


def test_vocabularies_are_copied_checked_and_kept_in_checkpoints(monkeypatch):
    src, tgt = (
        Vocab([["a", "b", "c"]], reserved_tokens=["<pad>", "<bos>", "<eos>"]),
        Vocab([["x"]], reserved_tokens=["<pad>"]),
    )
    task = Seq2Seq(arch="seq2seq", vocab_size=(len(src), len(tgt)))
    _with_data(monkeypatch, SimpleNamespace(src_vocab=src, tgt_vocab=tgt))
    task.setup("fit")
    assert task.src_vocab is src and task.tgt_vocab is tgt
    checkpoint: dict = {}
    task.on_save_checkpoint(checkpoint)
    restored = Seq2Seq(arch="seq2seq", vocab_size=(len(src), len(tgt)))
    restored.on_load_checkpoint(checkpoint)
    assert restored.src_vocab.idx_to_token == src.idx_to_token and restored.tgt_vocab.idx_to_token == tgt.idx_to_token


def test_a_vocabulary_of_another_size_than_the_model_is_refused(monkeypatch):
    src, tgt = Vocab([["a", "b"]]), Vocab([["x"]])
    task = Seq2Seq(arch="seq2seq", vocab_size=(len(src) + 1, len(tgt)))
    _with_data(monkeypatch, SimpleNamespace(src_vocab=src, tgt_vocab=tgt))
    with pytest.raises(ValueError, match=r"vocabulary sizes are \[\d+, \d+\] but the model was built for"):
        task.setup("fit")
