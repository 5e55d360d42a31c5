"""``python -m zoo similar`` on a word2vec checkpoint that zoo.fit wrote from a generated PTB:
the vocabulary travels in the checkpoint, the neighbours are the cosine ones, mistakes are one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_word2vec import write_ptb

from datamodules import PTBWord2Vec
from zoo.cli.fit import main as fit
from zoo.cli.similar import main as similar
from zoo.run.errors import run_command

CONFIGS = Path(__file__).parents[1] / "configs"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("w2v")
    data = write_ptb(root / "data", n_train=300, n_other=30)
    with pytest.MonkeyPatch.context() as mp:  # W&B offline: it writes its files into the run folder
        mp.setenv("WANDB_SILENT", "true")
        mp.delenv("WANDB_API_KEY", raising=False)
        _fit(root, data)
    return root / "tiny" / "version_0" / "checkpoints" / "last.ckpt", data


def _fit(root: Path, data: Path) -> None:
    fit(["--config", str(CONFIGS / "word2vec_ptb.yaml"), "--data.init_args.data_dir", str(data),
         "--data.init_args.min_freq", "1", "--data.init_args.batch_size", "64", "--data.init_args.download", "false",
         "--model.init_args.arch_kwargs", "{embed_size: 8}", "--model.init_args.queries", "[w1, nowhere]",
         "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(root), "--name", "tiny",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
         "--wandb", "true"])  # fmt: skip


def test_checkpoint_keeps_the_vocabulary_and_neighbours_are_cosine(trained, capsys):
    ckpt_path, data = trained
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    vocab = PTBWord2Vec(data_dir=str(data), min_freq=1, download=False).vocab
    assert ckpt["vocab"]["idx_to_token"] == vocab.idx_to_token
    assert ckpt["hyper_parameters"]["vocab_size"] == len(vocab)  # linked from the data module
    result = similar(["--ckpt_path", str(ckpt_path), "w1", "w7", "--k", "4"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["w1", "w7"]
    W = F.normalize(ckpt["state_dict"]["model.center.weight"], dim=1)
    for word, near in result.items():
        cos = W @ W[vocab[word]]
        cos[vocab[word]] = -2  # never the word itself
        best = cos.topk(4)
        assert [n for n, _ in near] == vocab.to_tokens(best.indices.tolist())
        assert [c for _, c in near] == pytest.approx(best.values.tolist(), abs=1e-6)
        assert f"{near[0][0]} {near[0][1]:.3f}" in lines[0 if word == "w1" else 1]


def test_validation_logs_the_nearest_words_as_a_wandb_table(trained):
    ckpt_path, _ = trained
    tables = list(ckpt_path.parents[1].glob("wandb/offline-run-*/files/media/table/val/similar_*.table.json"))
    assert tables
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ["word", "nearest (cosine)"]
    assert [row[0] for row in table["data"]] == ["w1"]  # the query outside the vocabulary is left out
    assert len(table["data"][0][1].split(", ")) == 3


def test_unknown_words(trained):
    ckpt_path, _ = trained
    with pytest.warns(UserWarning, match="skipped: 'nowhere'"):
        assert list(similar(["--ckpt_path", str(ckpt_path), "nowhere", "w2"])) == ["w2"]
    with pytest.raises(SystemExit) as e:
        run_command(lambda: similar(["--ckpt_path", str(ckpt_path), "nowhere", "zilch"]))
    message = str(e.value)
    assert message.startswith("error: none of 'nowhere', 'zilch' is in the model's vocabulary") and "\n" not in message


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))  # runs if the file is unpickled without weights_only


def test_a_crafted_checkpoint_runs_nothing(tmp_path):
    marker, evil = tmp_path / "pwned", tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "x": _Payload(marker)}, evil)
    with pytest.raises(SystemExit) as e:
        run_command(lambda: similar(["--ckpt_path", str(evil), "chip"]))
    assert str(e.value).startswith(f"error: {evil}: refused to load") and not marker.exists()


def test_missing_checkpoint_is_one_line(tmp_path):
    with pytest.raises(SystemExit) as e:
        run_command(lambda: similar(["--ckpt_path", str(tmp_path / "no.ckpt"), "chip"]))
    assert "no.ckpt: no such checkpoint file" in str(e.value) and "\n" not in str(e.value)
