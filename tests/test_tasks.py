"""What the tasks do per training step, besides the maths: epoch sums, step logging, fast paths."""

import inspect

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.signature_utils import is_param_in_hook_signature
from torch import nn

from datamodules import SyntheticRegression
from zoo.run.callbacks import Checkpoint, ProgressBar
from zoo.tasks import Classification, Regression


def test_train_epoch_sums_fold_and_match_a_direct_count(monkeypatch):
    monkeypatch.setattr(Classification, "fold_every", 2)  # fold after every second batch
    task = Classification(arch="softmax_regression", num_classes=10, in_channels=1)
    task.on_train_epoch_start()
    gen = torch.Generator().manual_seed(0)
    loss_sum, correct, n = 0.0, 0, 0
    for size in (7, 5, 3):  # the third batch is left in the lists, not folded
        x, y = torch.rand(size, 1, 28, 28, generator=gen), torch.randint(0, 10, (size,), generator=gen)
        loss = task.training_step((x, y), 0)
        with torch.no_grad():
            logits = task.model(x)
        assert torch.allclose(loss, F.cross_entropy(logits, y))
        loss_sum += float(loss) * size
        correct += int((logits.argmax(-1) == y).sum())
        n += size
    assert len(task._train_sizes) == 1
    sums = task._fold_train_batches()
    assert sums.tolist() == pytest.approx([loss_sum, correct, n], rel=1e-6)
    assert task._train_sizes == [] and task._train_means == {"loss": [], "acc": []}


def test_training_step_signature_is_cached_for_lightning():
    class Custom(Classification):  # a user's task: its own training_step gets the cache too
        def training_step(self, batch, batch_idx):
            return super().training_step(batch, batch_idx)

    for task in (Classification(arch="softmax_regression"), Custom(arch="softmax_regression")):
        step = inspect.getattr_static(type(task), "training_step")
        assert isinstance(step.__signature__, inspect.Signature)
        assert inspect.getfullargspec(task.training_step).args == ["self", "batch", "batch_idx"]
        assert is_param_in_hook_signature(task.training_step, "batch_idx", min_args=2)


def test_setattr_fast_path_keeps_module_registration():
    task = Regression(in_features=2)
    task._current_fx_name = "training_step"
    assert task.__dict__["_current_fx_name"] == "training_step" and "_current_fx_name" not in task._modules
    task.extra = nn.Linear(2, 1)  # everything else still goes through nn.Module
    assert "extra" in task._modules and "extra" not in task.__dict__


def test_step_metrics_are_kept_for_the_progress_bar():
    task = Regression(in_features=2)
    assert task.step_metrics == {}
    task.log_step_metrics({"train/loss_step": torch.tensor(1.5)})  # outside a Trainer: ignored
    assert task.step_metrics == {}
    task.step_metrics = {"train/loss_step": 0.25}
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_model_summary=False)
    assert ProgressBar().get_metrics(trainer, task)["train/loss_step"] == 0.25


def test_checkpoint_caches_its_state_key_and_still_saves_every_n_steps(tmp_path):
    every = Checkpoint(dirpath=tmp_path, every_n_train_steps=3, save_top_k=-1, filename="{step}")
    plain = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=3)
    assert every.state_key == plain.state_key.replace("ModelCheckpoint", "Checkpoint")
    assert every.__dict__["state_key"] == every.state_key  # built once
    task = Regression(in_features=2, lr=0.03)
    data = SyntheticRegression(num_train=100, num_val=20, batch_size=10)
    trainer = L.Trainer(max_epochs=1, callbacks=[every], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(task, datamodule=data)
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["step=3.ckpt", "step=6.ckpt", "step=9.ckpt"]


def test_gradient_clipping_still_applies():
    task = Regression(in_features=2)
    params = list(task.parameters())
    for p in params:
        p.grad = torch.full_like(p, 100.0)
    opt = torch.optim.SGD(params, lr=0.1)
    task.trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_model_summary=False)

    def norm() -> float:
        return float(torch.cat([p.grad.flatten() for p in params]).norm())

    task.configure_gradient_clipping(opt, gradient_clip_val=None)  # clipping off: untouched
    assert norm() > 100
    task.configure_gradient_clipping(opt, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
    assert norm() == pytest.approx(1.0, rel=1e-4)


def test_cpu_batches_skip_lightnings_device_walk():
    data = SyntheticRegression()
    x, y = torch.ones(4, 2), torch.zeros(4)
    batch = data.transfer_batch_to_device((x, y), torch.device("cpu"), 0)
    assert batch[0] is x and batch[1] is y  # returned as it is
    moved = data.transfer_batch_to_device({"x": x, "n": 3}, torch.device("cpu"), 0)  # others: Lightning's way
    assert moved["x"].data_ptr() == x.data_ptr() and moved["n"] == 3


def test_regression_logs_step_loss_to_the_loggers_and_epoch_loss_through_lightning(tmp_path):
    import pandas as pd
    from lightning.pytorch.loggers import CSVLogger

    task = Regression(in_features=2, lr=0.03)
    data = SyntheticRegression(num_train=100, num_val=20, batch_size=10)  # 10 steps an epoch
    trainer = L.Trainer(max_epochs=2, logger=CSVLogger(tmp_path, name="r"), log_every_n_steps=4,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(task, datamodule=data)
    log = pd.read_csv(tmp_path / "r" / "version_0" / "metrics.csv")
    steps = log.dropna(subset=["train/loss_step"])
    assert list(steps["step"]) == [3, 7, 11, 15, 19] and list(steps["epoch"]) == [0, 0, 1, 1, 1]
    epochs = log.dropna(subset=["train/loss"])
    assert list(epochs["epoch"]) == [0, 1] and epochs["train/loss"].iloc[1] < epochs["train/loss"].iloc[0]
    assert task.step_metrics["train/loss_step"] == steps["train/loss_step"].iloc[-1]


def test_epoch_figures_are_logged_for_a_loader_without_a_length():
    from torch.utils.data import DataLoader, IterableDataset

    class Stream(IterableDataset):  # no __len__: the last step is not known in advance
        def __iter__(self):
            gen = torch.Generator().manual_seed(0)
            for _ in range(6):
                x = torch.randn(8, 2, generator=gen)
                yield x, x @ torch.tensor([2.0, -3.4]) + 4.2

    task = Regression(in_features=2, lr=0.03)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    trainer.fit(task, train_dataloaders=DataLoader(Stream(), batch_size=None))
    assert trainer.num_training_batches == float("inf")
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
