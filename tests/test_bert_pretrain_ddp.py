"""BERT pretraining under two-process CPU DDP (gloo): the logged test MLM and NSP losses are those of
the whole test split, not of one rank's half, and the checkpoint carries the vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from ddp import fit_in_subprocess
from test_bert import write_wiki

from datamodules import WikiText2BERT
from zoo.core.checkpoint import load_checkpoint, load_task
from zoo.tasks import BERTPretrain

ROOT = Path(__file__).parents[1]
DATA = {"max_len": 24, "min_freq": 1, "val_fraction": 0.1, "test_fraction": 0.1}


def _losses(task: BERTPretrain, batch: tuple) -> tuple[float, float]:
    tokens, segments, valid_lens, positions, weights, labels, nsp = batch
    with torch.no_grad():
        mlm_logits, nsp_logits = task.model(tokens, segments, valid_lens, positions)
    mlm = (F.cross_entropy(mlm_logits.transpose(1, 2), labels, reduction="none") * weights).sum() / weights.sum()
    return float(mlm), float(F.cross_entropy(nsp_logits, nsp))


def test_two_process_ddp_logs_the_global_mlm_and_nsp_losses(tmp_path):
    data = write_wiki(tmp_path / "wiki", paragraphs=60, names=("valid.txt", "test.txt"))
    args = ["--config", str(ROOT / "configs" / "bert_pretrain_wikitext2.yaml"), "--data.init_args.data_dir", str(data),
            "--data.init_args.download", "false", "--data.init_args.batch_size", "16",
            *[a for k, v in DATA.items() for a in (f"--data.init_args.{k}", str(v))],
            "--model.init_args.arch_kwargs", "{num_hiddens: 16, ffn_num_hiddens: 32, num_heads: 2, num_layers: 1}",
            "--trainer.max_steps", "4", "--trainer.val_check_interval", "2", "--trainer.default_root_dir",
            str(tmp_path), "--name", "ddp", "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu",
            "--trainer.strategy", "ddp", "--trainer.devices", "2"]  # fmt: skip
    metrics = fit_in_subprocess(args, tmp_path / "ddp" / "version_0", timeout=180)
    assert load_checkpoint(metrics["best_checkpoint"])["vocab"]["idx_to_token"][3:5] == ["<cls>", "<sep>"]

    task = load_task(metrics["best_checkpoint"], BERTPretrain).eval()
    dm = WikiText2BERT(data_dir=str(data), train_on="valid+test", download=False, **DATA)
    dm.setup()
    assert task.vocab == dm.vocab
    n = len(dm._test)
    whole = list(range(n)) + list(range(n % 2))  # DistributedSampler repeats the first pair for an odd count
    mlm, nsp = _losses(task, dm._test.__getitems__(whole))
    assert metrics["test"]["test/mlm_loss"] == pytest.approx(mlm, rel=1e-4)
    assert metrics["test"]["test/nsp_loss"] == pytest.approx(nsp, rel=1e-4)
    for r in (0, 1):  # and the test can tell: either rank's half alone gives other losses
        assert _losses(task, dm._test.__getitems__(whole[r::2]))[0] != pytest.approx(mlm, rel=1e-3)
