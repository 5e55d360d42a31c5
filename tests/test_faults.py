"""Faults: a SIGKILLed run resumes to the same result, a diverged loss stops cleanly, and
checkpoints are written atomically."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from zoo.cli.fit import main
from zoo.run.faults import AtomicCheckpointIO, FiniteLossGuard, NonFiniteLossError
from zoo.run.folder import VERSION_ENV

ROOT = Path(__file__).parents[1]
RECIPE = ROOT / "configs" / "lenet_fashion_mnist.yaml"


class SigkillAt(L.Callback):
    """Kills its own process with SIGKILL (no clean-up runs) when ``global_step`` is reached."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class PoisonAt(L.Callback):
    """Sets a weight to NaN when ``global_step`` is reached, as a diverging run would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


def _args(data_dir: Path, root: Path, *extra: str) -> list[str]:
    return ["--config", str(RECIPE), "--data.init_args.data_dir", str(data_dir),
            "--data.init_args.val_size", "60", "--data.init_args.batch_size", "32",
            "--data.init_args.download", "false", "--trainer.default_root_dir", str(root),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.deterministic", "true", "--trainer.max_epochs", "2",
            "--model.init_args.arch", "lenet_bn", "--model.init_args.optimizer", "adam",
            "--model.init_args.lr", "0.01", *extra]  # fmt: skip


def _callback_config(tmp_path: Path, cls: type, step: int) -> str:
    path = tmp_path / f"{cls.__name__}.yaml"
    path.write_text(yaml.safe_dump({"trainer": {"callbacks": [
        {"class_path": f"{cls.__module__}.{cls.__name__}", "init_args": {"step": step}}]}}))  # fmt: skip
    return str(path)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(fashion_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(VERSION_ENV, raising=False)
    reference = main(_args(fashion_dir, tmp_path / "a", "--name", "run"))

    # 240 training examples / 32 = 8 steps an epoch: step 11 is in the middle of epoch 1
    monkeypatch.delenv(VERSION_ENV, raising=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(Path(__file__).parent)])}
    killed = subprocess.run(
        [sys.executable, "-m", "zoo.fit", *_args(fashion_dir, tmp_path / "b", "--name", "run"),
         "--config", _callback_config(tmp_path, SigkillAt, 11)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    run = tmp_path / "b" / "run" / "version_0"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8
    assert not (run / "metrics.json").exists()

    resumed = main(_args(fashion_dir, tmp_path / "b", "--name", "run", "--ckpt_path", "last"))
    assert resumed["epochs"] == reference["epochs"] == 2
    assert resumed["test"] == reference["test"]
    assert resumed["best_val"] == reference["best_val"]
    ref = torch.load(tmp_path / "a/run/version_0/checkpoints/last.ckpt", weights_only=True)
    new = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert new["global_step"] == ref["global_step"] == 16
    assert all(torch.equal(ref["state_dict"][k], new["state_dict"][k]) for k in ref["state_dict"])


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(
    fashion_dir, tmp_path, monkeypatch
):
    monkeypatch.delenv(VERSION_ENV, raising=False)
    args = _args(fashion_dir, tmp_path, "--name", "nan", "--config", _callback_config(tmp_path, PoisonAt, 10))
    with pytest.raises(NonFiniteLossError) as err:
        main(args)
    last = tmp_path / "nan" / "version_0" / "checkpoints" / "last.ckpt"
    message = str(err.value)
    assert "training loss is nan at epoch 1, step 10" in message
    assert f"the last good checkpoint, {last}, is kept" in message
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["epoch"] == 0 and ckpt["global_step"] == 8
    assert all(torch.isfinite(t).all() for t in ckpt["state_dict"].values())
    assert not (tmp_path / "nan" / "version_0" / "metrics.json").exists()

    # on the command line the same failure is one line, not a traceback
    with pytest.raises(SystemExit) as exit_:
        main(args, one_line_errors=True)
    assert "\n" not in str(exit_.value) and "training loss is nan" in str(exit_.value)


class _Strategy:
    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        return decision


def _fake_trainer(step: int = 0, world_size: int = 1):
    return type("T", (), {"strategy": _Strategy(), "world_size": world_size, "log_every_n_steps": 50,
                          "current_epoch": 0, "global_step": step, "checkpoint_callbacks": []})()  # fmt: skip


def test_guard_lets_finite_losses_pass():
    trainer = _fake_trainer(step=3)
    FiniteLossGuard().on_before_backward(trainer, None, torch.tensor(1.5))
    with pytest.raises(NonFiniteLossError, match="training loss is inf at epoch 0, step 3"):
        FiniteLossGuard().on_before_backward(trainer, None, torch.tensor(float("inf")))


def test_guard_off_the_cpu_reads_every_n_steps_and_before_a_checkpoint(monkeypatch):
    """Where a read would make the host wait (an accelerator, or DDP: here two processes), the
    losses' verdicts are folded on the device and read every n steps, at the epoch's end and
    before a checkpoint is written, never in between."""
    reads = []
    item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda t: reads.append(1) or item(t))
    guard, trainer = FiniteLossGuard(), _fake_trainer(world_size=2)
    trainer.log_every_n_steps = 4
    for step, loss in enumerate([1.0, 2.0, float("nan"), 1.0]):
        trainer.global_step = step
        if step < 3:
            guard.on_before_backward(trainer, None, torch.tensor(loss))
    assert reads == []  # three steps folded, none read
    with pytest.raises(NonFiniteLossError, match="not finite at a step of epoch 0 from step 0 to 3"):
        guard.on_before_backward(trainer, None, torch.tensor(1.0))  # the fourth step reads the flag
    assert reads == [1]
    # a pending bad step stops the next checkpoint from being written at all
    guard = FiniteLossGuard(every_n_steps=100)
    trainer.global_step = 7
    guard.on_before_backward(trainer, None, torch.tensor(float("inf")))
    with pytest.raises(NonFiniteLossError, match="from step 7 to 7"):
        guard.on_save_checkpoint(trainer, None, {})
    guard.on_before_backward(trainer, None, torch.tensor(1.0))
    guard.on_train_epoch_end(trainer, None)  # a finite epoch end passes and clears the flag
    assert guard._pending is None


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("disk full")  # stands in for a failure half-way through torch.save


def test_checkpoint_write_is_atomic(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "ckpts" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "epoch": 1}, path)
    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "bad": Unpicklable()}, path)
    assert io.load_checkpoint(path)["epoch"] == 1  # the old checkpoint is whole
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], torch.ones(1000))
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no temporary file left
    with pytest.raises(ValueError, match="missing.ckpt: no such checkpoint file"):
        io.load_checkpoint(tmp_path / "missing.ckpt")
