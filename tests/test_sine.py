"""The noisy sine sequence model (datamodules/sine.py) and its forecast plot (zoo/cli/forecast.py)."""

from pathlib import Path

import pytest
import torch
from torch import nn

from datamodules.sine import NoisySine, lagged_windows, noisy_sine
from zoo.cli.fit import main as fit
from zoo.cli.forecast import free_run, k_step_ahead
from zoo.cli.forecast import main as forecast
from zoo.core.checkpoint import CheckpointError

RECIPE = Path(__file__).parents[1] / "configs" / "sine_mlp.yaml"
PNG = b"\x89PNG\r\n\x1a\n"


class LastValue(nn.Module):
    """Predicts the last value of its window, or the window's mean plus one: easy to reason about."""

    def __init__(self, plus_one: bool = False):
        super().__init__()
        self.plus_one = plus_one

    def forward(self, x):
        return (x.mean(1, keepdim=True) + 1) if self.plus_one else x[:, -1:]


def test_windows_hold_the_past_tau_values_and_the_next_one():
    x = torch.arange(10.0)
    features, labels = lagged_windows(x, 4)
    assert features.shape == (6, 4) and labels.shape == (6, 1)
    assert features[0].tolist() == [0, 1, 2, 3] and labels[0].item() == 4
    assert features[-1].tolist() == [5, 6, 7, 8] and labels[-1].item() == 9
    with pytest.raises(ValueError, match="tau"):
        lagged_windows(x, 10)


def test_series_is_the_course_sine_and_seeded():
    t, x = noisy_sine(1000, 0.2, seed=0)
    assert t[0] == 1 and t[-1] == 1000
    residual = x - torch.sin(0.01 * t)
    assert 0.17 < residual.std() < 0.23 and abs(residual.mean()) < 0.03
    assert torch.equal(noisy_sine(1000, 0.2, seed=0)[1], x)
    assert not torch.equal(noisy_sine(1000, 0.2, seed=1)[1], x)


def test_datamodule_splits_in_time_order():
    dm = NoisySine(T=100, tau=4, num_train=60, batch_size=8)
    assert dm.in_features == 4
    dm.setup()
    sizes = [len(dm._train), len(dm._val), len(dm._test)]
    assert sizes == [60, 18, 18]
    x = dm.series()[1]
    assert torch.equal(dm._val.tensors[0][0], x[60:64])  # validation picks up where training stops
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (8, 4) and yb.shape == (8, 1)
    with pytest.raises(ValueError, match="num_train"):
        NoisySine(T=100, tau=4, num_train=96)


def test_k_step_ahead_feeds_back_its_own_predictions():
    x = torch.arange(20.0)
    preds = k_step_ahead(LastValue(), x, tau=3, max_k=4)
    assert preds.shape == (20 - 3 - 4 + 1, 4)
    # predicting "the last value" k steps ahead repeats the last observation x[i + 2]
    assert torch.equal(preds, (torch.arange(14.0) + 2).unsqueeze(1).expand(14, 4))
    preds = k_step_ahead(LastValue(plus_one=True), x, tau=2, max_k=2)
    assert preds[0].tolist() == [1.5, 2.25]  # mean(0, 1) + 1, then mean(1, 1.5) + 1
    run = free_run(LastValue(), x, tau=3, start=10)
    assert torch.equal(run[:10], x[:10]) and (run[10:] == 9).all()


def test_fit_then_forecast_plot(tmp_path):
    summary = fit(["--config", str(RECIPE), "--trainer.default_root_dir", str(tmp_path), "--name", "sine",
                   "--trainer.enable_progress_bar", "false"])  # fmt: skip
    assert summary["test"]["test/rmse"] < 0.3  # noise std 0.2: a one-step model nearly reaches it
    out = forecast(["--ckpt_path", str(tmp_path / "sine" / "version_0" / "checkpoints" / "last.ckpt"),
                    "--out", str(tmp_path / "plot.png"), "--steps", "1", "4", "16"])  # fmt: skip
    assert out.read_bytes()[:8] == PNG
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        forecast(["--ckpt_path", str(tmp_path / "none.ckpt")])
