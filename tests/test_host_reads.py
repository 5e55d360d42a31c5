"""No task step or metric reads a tensor on the host between training steps: on a GPU every such
read (``item``, ``bool``, ``tolist``, ...) makes the host wait for the device. The reads a step may
make here are the two that happen on the CPU alone (``FiniteLossGuard``'s check and Lightning's
progress-bar copy of the step loss: both move off the step where the loss lives on a device) and
the data module's collation of host data."""

from __future__ import annotations

import collections
import functools
import traceback
from pathlib import Path

import lightning as L
import pytest
import torch

from tests.conftest import write_fashion_mnist
from tests.test_translation import fit_args, write_counting_pairs
from zoo.cli.fit import main as fit

READS = ("item", "__bool__", "tolist", "__float__", "__int__")
CONFIGS = Path(__file__).parents[1] / "configs"
#: where a per-step read may come from (see the module's docstring)
ALLOWED = ("zoo/run/faults.py", "lightning/pytorch/trainer/connectors/logger_connector/result.py", "datamodules/")


def _site(stack: list[traceback.FrameSummary]) -> str:
    """The innermost frame outside the tensor's own methods and Lightning's helpers that walk
    collections (``apply_func.py``)."""
    for frame in reversed(stack[:-1]):  # [-1]: the counting wrapper itself
        name = frame.filename.replace("\\", "/")
        if not name.endswith(("torch/_tensor.py", "/apply_func.py")):
            return name
    return "?"


class ReadCounter(L.Callback):
    """Counts host reads from the start of training step ``first`` to the start of step ``last``."""

    def __init__(self, first: int = 2, last: int = 6) -> None:
        self.first, self.last, self.active = first, last, False
        self.sites: collections.Counter[str] = collections.Counter()

    def on_train_batch_start(self, trainer, *args) -> None:
        self.active = self.first <= trainer.global_step < self.last

    def on_train_epoch_end(self, *args) -> None:
        self.active = False  # the epoch's end reads its figures once: not a step's cost


@pytest.mark.parametrize("recipe", ["lenet_fashion_mnist", "transformer_fra_eng"])
def test_a_training_step_reads_nothing_on_the_host_but_the_cpu_only_checks(recipe, tmp_path, monkeypatch):
    counter = ReadCounter()
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            if counter.active:
                counter.sites[_site(traceback.extract_stack())] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    init = L.Trainer.__init__

    @functools.wraps(init)  # LightningCLI reads the Trainer's signature through it
    def with_counter(self, *args, callbacks=None, **kwargs):
        init(self, *args, callbacks=[*(callbacks or []), counter], **kwargs)

    monkeypatch.setattr(L.Trainer, "__init__", with_counter)
    if recipe == "lenet_fashion_mnist":
        args = ["--config", str(CONFIGS / f"{recipe}.yaml"), "--data.init_args.data_dir",
                str(write_fashion_mnist(tmp_path)), "--data.init_args.val_size", "60", "--data.init_args.download",
                "false", "--data.init_args.batch_size", "16", "--trainer.default_root_dir", str(tmp_path / "runs"),
                "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]  # fmt: skip
    else:
        args = fit_args(recipe, write_counting_pairs(tmp_path / "data"), tmp_path / "runs")
    fit([*args, "--trainer.max_steps", "8", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1"])
    assert counter.sites, "the counter saw no step"
    unexpected = {site: n for site, n in counter.sites.items() if not any(a in site for a in ALLOWED)}
    assert not unexpected, unexpected
    per_step = sum(n for site, n in counter.sites.items() if "datamodules/" not in site) / 4
    assert per_step == 2  # the guard's read and the progress bar's, one each per step
