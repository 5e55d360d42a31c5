"""What the tasks do per training step, besides the maths: epoch means, step logging, clipping."""


import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from datamodules import SyntheticRegression
from zoo.tasks import Classification, Regression


def test_epoch_figures_are_size_weighted_means_of_the_batches():
    seen = []

    class Batches(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(batch)

    gen = torch.Generator().manual_seed(0)
    batches = [(torch.rand(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen)) for n in (7, 5, 3)]
    task = Classification(arch="softmax_regression", num_classes=10, in_channels=1, lr=0.0)  # weights stay put
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[Batches()])  # fmt: skip
    trainer.fit(task, train_dataloaders=DataLoader(batches, batch_size=None))
    with torch.no_grad():
        logits = [task.model(x) for x, _ in seen]
    n = sum(len(y) for _, y in seen)
    loss = sum(float(F.cross_entropy(lg, y, reduction="sum")) for lg, (_, y) in zip(logits, seen)) / n
    acc = sum(int((lg.argmax(-1) == y).sum()) for lg, (_, y) in zip(logits, seen)) / n
    assert float(trainer.callback_metrics["train/loss"]) == pytest.approx(loss, rel=1e-5)
    assert float(trainer.callback_metrics["train/acc"]) == pytest.approx(acc, rel=1e-5)


def test_step_loss_reaches_callbacks_and_gradient_clipping_applies(tmp_path):
    """The step loss goes through self.log, so a callback can monitor it; the Trainer's
    clipping option clips."""
    norms = []

    class Watch(L.Callback):  # plain SGD: each step moves the weights by lr x the clipped gradient
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.before = torch.cat([p.detach().flatten() for p in pl_module.parameters()])

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            after = torch.cat([p.detach().flatten() for p in pl_module.parameters()])
            norms.append(float((after - self.before).norm()) / 0.03)

    every = ModelCheckpoint(dirpath=tmp_path, monitor="train/loss_step", every_n_train_steps=3, save_top_k=1,
                            filename="{step}")  # fmt: skip
    task = Regression(in_features=2, lr=0.03)
    data = SyntheticRegression(num_train=100, num_val=20, batch_size=10)
    trainer = L.Trainer(max_epochs=1, callbacks=[every, Watch()], logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, gradient_clip_val=0.5)  # fmt: skip
    trainer.fit(task, datamodule=data)
    assert every.best_model_score is not None and len(list(tmp_path.glob("step=*.ckpt"))) == 1
    assert max(norms) == pytest.approx(0.5, rel=1e-4)  # the first steps' gradients are far larger


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


def test_epoch_mean_weights_each_batch_as_torchmetrics_mean_does():
    from torchmetrics import MeanMetric

    from zoo.tasks.base import EpochMean

    ours, reference = EpochMean(), MeanMetric()
    for value, n in [(2.0, 1), (4.0, 3), (torch.tensor(1.0), torch.tensor(6))]:
        ours.update(torch.as_tensor(value), weight=n)
        reference.update(torch.as_tensor(value), weight=n)
    assert ours.compute().item() == pytest.approx(reference.compute().item()) == pytest.approx((2 + 12 + 6) / 10)
    ours.update(torch.tensor(float("nan")), weight=1)  # shown, not dropped
    assert torch.isnan(ours.compute())
