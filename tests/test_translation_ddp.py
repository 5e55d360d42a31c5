"""Seq2Seq under two-process CPU DDP (gloo): the logged test loss and BLEU are those of the
whole test split, not of one rank's half."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from ddp import fit_in_subprocess
from test_translation import fit_args, write_counting_pairs
from torchmetrics.text import SacreBLEUScore

from datamodules import FraEng
from zoo.core.checkpoint import load_task
from zoo.tasks import Seq2Seq
from zoo.tasks.seq2seq import detokenize

ROOT = Path(__file__).parents[1]


def _evaluate(task: Seq2Seq, batch: tuple) -> tuple[float, float]:
    """Loss per target token and corpus BLEU of one batch, in this process."""
    src, src_len, tgt, tgt_len, refs = batch
    with torch.no_grad():
        bos = torch.full_like(tgt[:, :1], task.special("<bos>"))
        logits = task.model(src, torch.cat([bos, tgt[:, :-1]], 1), src_len)
        valid = torch.arange(tgt.shape[1]) < tgt_len[:, None]
        loss = (F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none") * valid).sum() / valid.sum()
    hyps = [detokenize(ids, task.tgt_vocab) for ids in task.translate_ids(src, src_len, task.beam_size)]
    return float(loss), float(SacreBLEUScore()(hyps, [[r] for r in refs])) * 100


def test_two_process_ddp_logs_the_global_loss_and_bleu(tmp_path):
    data = write_counting_pairs(tmp_path / "data")
    # 20 test pairs halve evenly over 2 ranks, so DistributedSampler pads nothing
    args = fit_args("bahdanau_fra_eng", data, tmp_path, "--name", "ddp", "--trainer.max_epochs", "6",
                    "--trainer.check_val_every_n_epoch", "3", "--model.init_args.lr", "0.02",
                    "--model.init_args.arch_kwargs", "{embed_size: 16, num_hiddens: 32, num_layers: 1}",
                    "--model.init_args.beam_size", "2", "--trainer.accelerator", "cpu",
                    "--trainer.strategy", "ddp", "--trainer.devices", "2")  # fmt: skip
    metrics = fit_in_subprocess(args, tmp_path / "ddp" / "version_0", timeout=180)

    task = load_task(metrics["best_checkpoint"], Seq2Seq).eval()
    dm = FraEng(data_dir=str(data), num_examples=200, val_size=20, test_size=20)
    dm.setup()
    whole = dm._test.__getitems__(range(20))
    loss, bleu = _evaluate(task, whole)
    assert metrics["test"]["test/loss"] == pytest.approx(loss, rel=1e-4)
    assert metrics["test"]["test/bleu"] == pytest.approx(bleu, abs=1e-3) and bleu > 0
    # and the test can tell: either rank's half alone (every 2nd pair) gives another loss
    for r in (0, 1):
        assert _evaluate(task, dm._test.__getitems__(range(r, 20, 2)))[0] != pytest.approx(loss, rel=1e-3)
