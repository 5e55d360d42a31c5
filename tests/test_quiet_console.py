"""The main README command prints no third-party line a user cannot act on (Lightning's
litlogger tip, torch's ``LeafSpec`` deprecation raised inside Lightning, "multiple
ModelCheckpoint callbacks", "LightningCLI's args parameter"), while a real warning still shows.

Run as a subprocess: pytest's own warning filters (pyproject) would hide what a user sees. The
run is short but real (not ``fast_dev_run``, which saves no checkpoint and so would never test
the best one, where the ModelCheckpoint warning came from)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

from zoo.cli.fit import make_cli

ROOT = Path(__file__).parents[1]
UNWANTED = ("litlogger", "LeafSpec", "multiple `ModelCheckpoint` callbacks", "LightningCLI's args parameter",
            "FLOPs")  # Lightning's summary counts 0 FLOPs without an example input


def test_the_main_command_prints_none_of_them_but_real_warnings(fashion_dir, tmp_path):
    cmd = [sys.executable, "-m", "zoo.fit", "--config", "configs/lenet_fashion_mnist.yaml",
           "--data.init_args.data_dir", str(fashion_dir), "--data.init_args.val_size", "60",
           "--data.init_args.download", "false", "--trainer.default_root_dir", str(tmp_path),
           "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONWARNINGS", "ZOO_"))}
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    console = run.stdout + run.stderr
    assert run.returncode == 0, console[-3000:]
    assert "trainable, 0 frozen" in console  # the model summary, less its FLOPs
    assert "final metrics" in console and (tmp_path / "lenet_fashion_mnist" / "version_0" / "metrics.json").is_file()
    for line in UNWANTED:
        assert line not in console, f"{line!r} is printed:\n{console[-3000:]}"
    # a warning the user can act on still shows (2 batches an epoch, a log every 50 steps)
    assert "smaller than the logging interval Trainer(log_every_n_steps=50)" in console, console[-3000:]


def test_main_with_args_under_another_command_line_does_not_warn(fashion_dir, tmp_path, monkeypatch):
    """Competitions and --folds call zoo.fit's main(args) from their own command line."""
    monkeypatch.setattr(sys, "argv", ["python -m competitions", "house_prices", "fit"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_cli(["--config", str(ROOT / "configs" / "lenet_fashion_mnist.yaml"), "--data.init_args.data_dir",
                  str(fashion_dir), "--trainer.default_root_dir", str(tmp_path)])  # fmt: skip
        warnings.warn("a real warning", UserWarning, stacklevel=1)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "args parameter" in m], messages
    assert "a real warning" in messages
