"""What a task keeps of its data (ZooTask.data_state): copied from the data module in setup,
checked against the model's vocab_size and num_classes, stored in and restored from a checkpoint,
and checked again by the one loader."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from datamodules.text import Vocab
from zoo.core.checkpoint import CheckpointError, load_task
from zoo.tasks import Classification, Detection, Seq2Seq


def _trainer(data) -> SimpleNamespace:
    """What ``setup`` reads of a Trainer: its data module and the device it trains on."""
    return SimpleNamespace(datamodule=data, strategy=SimpleNamespace(root_device=torch.device("cpu")))


def _with_data(monkeypatch, data) -> None:
    monkeypatch.setattr(Seq2Seq, "trainer", property(lambda self: _trainer(data)))


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
    with pytest.raises(ValueError, match=r"does not fit the model: vocabulary sizes \[\d+, \d+\] for vocab_size="):
        task.setup("fit")


def test_classification_and_detection_keep_their_facts_through_data_state(monkeypatch):
    classes = ["cat", "dog"]
    cases = [
        (Classification(arch="lenet", num_classes=2), {"classes": classes, "preprocessing": {"image_size": 28}}),
        (Detection(arch="tiny_ssd", num_classes=2), {"classes": classes, "image_size": 64}),
    ]
    for task, facts in cases:
        data = property(lambda self, f=facts: _trainer(SimpleNamespace(**f)))
        monkeypatch.setattr(type(task), "trainer", data)
        task.setup("fit")
        checkpoint: dict = {}
        task.on_save_checkpoint(checkpoint)
        assert {k: checkpoint[k] for k in facts} == facts
        wrong = type(task)(arch=task.hparams.arch, num_classes=3)
        with pytest.raises(ValueError, match=r"does not fit the model: 2 class names for num_classes=3"):
            wrong.setup("fit")


def test_the_loader_names_the_missing_and_the_misfit_data_facts(tmp_path):
    """load_task refuses, in one line, a checkpoint that lacks a fact its task keeps (all, or the
    ones a command needs) or holds one that does not fit the model."""
    src, tgt = Vocab([["a", "b"]], reserved_tokens=["<pad>", "<bos>", "<eos>"]), Vocab([["x"]])
    task = Seq2Seq(arch="seq2seq", vocab_size=(len(src), len(tgt)))
    task.src_vocab, task.tgt_vocab = src, tgt
    ckpt = {"state_dict": task.state_dict(), "hyper_parameters": {**task.hparams, "_class_path": "zoo.tasks.Seq2Seq"}}
    task.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "whole.ckpt")
    assert load_task(tmp_path / "whole.ckpt", Seq2Seq).tgt_vocab.idx_to_token == tgt.idx_to_token
    torch.save({k: v for k, v in ckpt.items() if k != "tgt_vocab"}, tmp_path / "part.ckpt")
    with pytest.raises(CheckpointError, match=r"part.ckpt: records no tgt_vocab, which a Seq2Seq keeps from the data"):
        load_task(tmp_path / "part.ckpt", Seq2Seq)
    assert load_task(tmp_path / "part.ckpt", Seq2Seq, needs=("src_vocab",)).tgt_vocab is None
    ckpt["tgt_vocab"] = Vocab([["x", "y", "z"]]).to_dict()
    torch.save(ckpt, tmp_path / "misfit.ckpt")
    with pytest.raises(CheckpointError, match=r"misfit.ckpt: its data facts do not fit its model: vocabulary sizes"):
        load_task(tmp_path / "misfit.ckpt", Seq2Seq)
