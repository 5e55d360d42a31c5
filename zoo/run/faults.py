"""Runs that survive faults: atomic checkpoints, exact resumption, and a stop on a diverged loss.

* ``AtomicCheckpointIO`` writes every checkpoint to a temporary file in its own folder, fsyncs
  it, then renames it over the target: a run killed while saving leaves the previous
  ``last.ckpt`` whole. (Lightning's ``TorchCheckpointIO`` goes through an fsspec transaction
  whose temporary file lives in the system temp folder, so the final move may be a copy across
  file systems, and nothing is fsynced.) It loads through ``zoo.core.checkpoint.load_checkpoint``
  (``weights_only=True``), so a checkpoint from elsewhere cannot run code when it is unpickled.
* ``RNGState`` keeps the global random generators (torch, CUDA, numpy, Python) in the
  checkpoint, so the batches and dropout masks after ``--ckpt_path last`` are the ones the
  uninterrupted run would have drawn (with ``--trainer.deterministic true`` the final metrics
  are then identical; Lightning itself does not save these states).
* ``FiniteLossGuard`` stops the run at a NaN or infinite training loss, with a message naming
  the step (on one CPU process: before the optimizer applies it; on an accelerator: the range
  of steps since its last read, so training never waits on the device for it) and the last good
  checkpoint, which is left untouched (no checkpoint is written after the bad step).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins import TorchCheckpointIO

from zoo.core.checkpoint import load_checkpoint
from zoo.core.errors import ConfigError, ZooError
from zoo.core.io import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` through ``zoo.core.io.atomic_write``; loading through the zoo's one safe
    loader, ``zoo.core.checkpoint.load_checkpoint`` (``weights_only=True`` whatever the caller asks)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise ConfigError(f"{type(self).__name__} takes no storage_options")
        with atomic_write(path, "wb") as f:
            torch.save(checkpoint, f)

    def load_checkpoint(self, path, map_location: Callable | None = None, weights_only: bool | None = None):
        return load_checkpoint(path, map_location=map_location or "cpu")


class RNGState(L.Callback):
    """Saves the global random states with each checkpoint and restores them on resume.

    The states are stored as tensors and plain Python values, so the checkpoint still loads
    with ``weights_only=True``. Only rank 0 writes checkpoints, so under DDP every rank resumes
    from rank 0's states (the data order there comes from ``DistributedSampler``'s seed and
    epoch, not from these generators).
    """

    def state_dict(self) -> dict[str, Any]:
        version, keys, pos, has_gauss, gauss = np.random.get_state()
        py_version, py_state, py_gauss = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            # this process's device only: get_rng_state_all() would open a context on every GPU
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
            "numpy": [version, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": [py_version, list(py_state), py_gauss],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if state.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda"])
        version, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((version, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        py_version, py_state, py_gauss = state["python"]
        random.setstate((py_version, tuple(py_state), py_gauss))


class NonFiniteLossError(ZooError, RuntimeError):
    """The training loss became NaN or infinite."""


class FiniteLossGuard(L.Callback):
    """Raises ``NonFiniteLossError`` when a training loss is not finite.

    Reading a loss on the host costs nothing in one process on the CPU, so there every loss is
    read before its backward pass, and a NaN never reaches the weights. On an accelerator, or
    under DDP, a read per step would make the host wait for the device (or for the other
    processes) every step; there each step's verdict stays on the device, folded into one flag,
    and the flag is read every ``every_n_steps`` optimizer steps (default: the trainer's
    ``log_every_n_steps``, when the logger reads the loss anyway), at the end of each epoch and
    before every checkpoint is written. The run then stops with the range of steps the bad loss
    fell in, and no checkpoint written after it exists: the last good one is kept. Under DDP the
    ranks agree first (one all-reduce of the flag), so all stop together instead of the healthy
    ones waiting forever in the gradient all-reduce."""

    def __init__(self, every_n_steps: int | None = None) -> None:
        self.every_n_steps = every_n_steps
        self._pending: torch.Tensor | None = None  # the folded "some loss was not finite" flag
        self._steps = (0, 0)  # the first and last optimizer step folded into it

    def _period(self, trainer: L.Trainer, loss: torch.Tensor) -> int:
        if self.every_n_steps is not None:
            return max(1, self.every_n_steps)
        if loss.device.type == "cpu" and trainer.world_size == 1:
            return 1
        return max(1, trainer.log_every_n_steps)

    def on_before_backward(self, trainer: L.Trainer, module: L.LightningModule, loss: torch.Tensor) -> None:
        if self._period(trainer, loss) == 1:
            # one scalar read (cheaper than isfinite + all on this hot path)
            bad = not math.isfinite(loss.item()) if loss.numel() == 1 else not bool(torch.isfinite(loss.detach()).all())
            if trainer.strategy.reduce_boolean_decision(bad, all=False):
                self._stop(trainer, f"{loss.item()}" if bad else "finite here but not on another rank",
                           f"at epoch {trainer.current_epoch}, step {trainer.global_step}")  # fmt: skip
            return
        flag = ~torch.isfinite(loss.detach()).all()
        step = trainer.global_step
        if self._pending is None:
            self._pending, self._steps = flag, (step, step)
        else:
            self._pending, self._steps = self._pending | flag, (self._steps[0], step)
        if step - self._steps[0] + 1 >= self._period(trainer, loss):
            self._check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._check(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._check(trainer)  # raising here stops the write: no checkpoint holds the bad step

    def _check(self, trainer: L.Trainer) -> None:
        """Read the pending flag (every rank calls this at the same steps)."""
        if self._pending is None:
            return
        (first, last), bad = self._steps, bool(self._pending.item())
        self._pending = None
        if trainer.strategy.reduce_boolean_decision(bad, all=False):
            self._stop(trainer, "not finite" if bad else "finite here but not on another rank",
                       f"at a step of epoch {trainer.current_epoch} from step {first} to {last}")  # fmt: skip

    def _stop(self, trainer: L.Trainer, value: str, when: str) -> None:
        paths = [p for c in trainer.checkpoint_callbacks for p in (c.last_model_path, c.best_model_path)]
        saved = [Path(p) for p in paths if p and Path(p).is_file()]
        last = max(saved, key=lambda p: p.stat().st_mtime) if saved else None
        kept = f"the last good checkpoint, {last}, is kept" if last else "no checkpoint had been saved yet"
        raise NonFiniteLossError(
            f"training loss is {value} {when}; stopped, {kept}. Clip gradients "
            "(--trainer.gradient_clip_val) and resume with --ckpt_path last, or lower the learning "
            "rate and start again"
        )


def fault_plugins(plugins: Any) -> list:
    """The trainer's ``plugins`` with ``AtomicCheckpointIO`` added, unless one of them already
    is a ``CheckpointIO`` (a user's choice wins)."""
    from lightning.fabric.plugins import CheckpointIO

    plugins = [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(AtomicCheckpointIO())
    return plugins
