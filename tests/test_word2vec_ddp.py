"""word2vec under two-process CPU DDP (gloo): the logged test loss is that of the whole test
split, not of one rank's half."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ddp import fit_in_subprocess
from test_word2vec import write_ptb

from datamodules import PTBWord2Vec
from zoo.core.checkpoint import load_task
from zoo.tasks import Word2Vec
from zoo.tasks.word2vec import example_loss

ROOT = Path(__file__).parents[1]


def _arg(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _loss(task: Word2Vec, batch: tuple) -> float:
    center, cn, mask, label = batch
    with torch.no_grad():
        return float(example_loss(task.model(center, cn), label, mask).mean())


def test_two_process_ddp_logs_the_global_loss(tmp_path):
    data = write_ptb(tmp_path / "data", n_train=300, n_other=30, seed=1)
    # subsample_t 1 keeps every word, so the test split's size is known: even, and DistributedSampler pads nothing
    options = {"data_dir": str(data), "min_freq": 1, "subsample_t": 1.0, "batch_size": 32, "download": False}
    dm = PTBWord2Vec(**options)
    dm.setup()
    n = len(dm._test)
    assert n % 2 == 0
    args = ["--config", str(ROOT / "configs" / "word2vec_ptb.yaml"), "--trainer.default_root_dir", str(tmp_path),
            "--name", "ddp", "--trainer.max_epochs", "2", "--model.init_args.arch_kwargs", "{embed_size: 8}",
            "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.devices", "2",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            *[a for k, v in options.items() for a in (f"--data.init_args.{k}", _arg(v))]]  # fmt: skip
    metrics = fit_in_subprocess(args, tmp_path / "ddp" / "version_0", timeout=240)

    task = load_task(metrics["best_checkpoint"], Word2Vec).eval()
    whole = _loss(task, dm._test.__getitems__(range(n)))
    assert metrics["test"]["test/loss"] == pytest.approx(whole, rel=1e-4)
    # and the test can tell: either rank's half alone (every 2nd example) gives another loss
    for r in (0, 1):
        assert _loss(task, dm._test.__getitems__(range(r, n, 2))) != pytest.approx(whole, rel=1e-3)
