"""``--ckpt_path last --wandb true`` continues the same W&B run: its id is kept in the run
folder (``wandb_id``), offline here (no key, ``WANDB_MODE=offline``)."""

from __future__ import annotations

import re
from pathlib import Path

from zoo.cli.fit import main

RECIPE = Path(__file__).parents[1] / "configs" / "lenet_fashion_mnist.yaml"


def _args(data_dir, root, *extra):
    return ["--config", str(RECIPE), "--data.init_args.data_dir", str(data_dir), "--data.init_args.val_size", "60",
            "--data.init_args.batch_size", "64", "--data.init_args.download", "false",
            "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
            "--trainer.limit_train_batches", "2", "--name", "w", "--wandb", "true", *extra]  # fmt: skip


def test_resume_continues_the_same_wandb_run(fashion_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    main(_args(fashion_dir, tmp_path / "runs", "--trainer.max_epochs", "1"))
    run = tmp_path / "runs" / "w" / "version_0"
    run_id = (run / "wandb_id").read_text().strip()
    assert run_id
    summary = main(_args(fashion_dir, tmp_path / "runs", "--trainer.max_epochs", "2", "--ckpt_path", "last"))
    assert summary["epochs"] == 2 and not (run.parent / "version_1").exists()
    offline = sorted((run / "wandb").glob("offline-run-*"))
    # offline-run-<time>-<id>, and W&B adds "-1" when both start within one second
    assert len(offline) == 2 and all(re.search(rf"-{run_id}(-\d+)?$", d.name) for d in offline), offline
    assert all(list(d.glob(f"run-{run_id}.wandb")) for d in offline)  # both logs of the one run, for wandb sync
    main(_args(fashion_dir, tmp_path / "runs", "--trainer.max_epochs", "1"))  # a new run: a new W&B run
    assert (run.parent / "version_1" / "wandb_id").read_text().strip() != run_id
