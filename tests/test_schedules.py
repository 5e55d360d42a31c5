"""The LR schedules of ZooTask (torch's schedulers, built by zoo.tasks.optim): their values at
chosen steps, every recipe's rates step by step against those of the closure they replaced, and
the rates a real fit steps through."""

import json
import math
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch

from zoo.tasks import Regression, ZooTask
from zoo.tasks.optim import build_optimizer, build_scheduler

SPE = 10  # steps per epoch in the factor tests
FIXTURE = Path(__file__).parent / "fixtures" / "lr_schedules.json"


def rates(task: ZooTask, total: int, steps_per_epoch: int) -> list[list[float]]:
    """Each group's rate at each of ``total`` steps, as a fit would step them."""
    opt = build_optimizer(task.model, task.optimizer_name, task.lr, task.momentum, task.weight_decay,
                          task.head_lr_mult, task.optimizer_kwargs)  # fmt: skip
    sched = build_scheduler(opt, task.schedule, total, steps_per_epoch)
    seen = []
    with warnings.catch_warnings():  # no gradients: optimizer.step() is a no-op, which torch notes
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(total):
            seen.append([g["lr"] for g in opt.param_groups])
            opt.step()
            sched.step()
    return seen


def factor(total: int = 30 * SPE, **kwargs):
    lr = kwargs.pop("lr", 0.3)
    task = Regression(arch="linear", in_features=2, lr=lr, **kwargs)
    seen = rates(task, total, SPE)
    return lambda step: seen[step][0] / lr


def test_every_recipes_schedule_equals_the_closure_it_replaced():
    """``lr_schedules.json`` holds, for every recipe with a schedule (configs/ and the
    competitions), the rates the hand-written ``LambdaLR`` closure and ``OneCycleLR`` of commit
    dd542b7 stepped through (its settings, 7 steps an epoch, the head at ``head_lr_mult``)."""
    recipes = json.loads(FIXTURE.read_text())
    assert len(recipes) == 18 and "configs/lenet_lr_warmup.yaml" in recipes
    for name, r in recipes.items():
        task = ZooTask(**r["settings"])
        task.model = torch.nn.Sequential(torch.nn.Linear(2, 2))
        task.model.head = torch.nn.Linear(2, 2)
        got = rates(task, r["total_steps"], r["steps_per_epoch"])
        assert len(got) == len(r["lr"])
        for step, (a, b) in enumerate(zip(got, r["lr"], strict=True)):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-15), f"{name} step {step}: {a} != {b}"


def test_multistep_halves_at_each_milestone():
    f = factor(scheduler="multistep", milestones=[15, 5], gamma=0.5)  # milestones in any order
    assert [f(s) for s in (0, 49, 50, 149, 150, 299)] == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25, 0.25])


def test_step_decays_every_step_size_epochs():
    f = factor(scheduler="step", step_size=4, gamma=0.9)
    assert f(39) == pytest.approx(1.0) and f(40) == pytest.approx(0.9) and f(80) == pytest.approx(0.81)


def test_sqrt_is_the_course_rate_at_each_epoch_start():
    f = factor(scheduler="sqrt", lr=0.1)
    for epoch in (0, 1, 3, 29):  # the course: eta_0 (t + 1)^(-1/2), t in epochs
        assert f(epoch * SPE) == pytest.approx((epoch + 1) ** -0.5)
    assert f(5) == pytest.approx(1.5**-0.5)  # and smooth within an epoch


def test_cosine_reaches_min_lr_at_decay_epochs_then_stays():
    lr, floor = 0.3, 0.01
    f = factor(scheduler="cosine", lr=lr, min_lr=floor, decay_epochs=20)
    assert f(0) == pytest.approx(1.0)
    assert lr * f(10 * SPE) == pytest.approx(floor + (lr - floor) / 2)  # half way: the mean
    assert lr * f(20 * SPE) == pytest.approx(floor) and lr * f(29 * SPE) == pytest.approx(floor)
    # the course's CosineScheduler(max_update=20, base_lr=0.3, final_lr=0.01) at epoch 7
    course = floor + (lr - floor) * (1 + math.cos(math.pi * 7 / 20)) / 2
    assert lr * f(7 * SPE) == pytest.approx(course)


def test_warmup_then_cosine_as_the_course():
    lr, floor = 0.3, 0.01
    f = factor(scheduler="cosine", lr=lr, min_lr=floor, decay_epochs=20, warmup_epochs=5)
    assert f(0) == pytest.approx(1 / 50) and f(24) == pytest.approx(25 / 50)  # linear, per step
    assert f(50) == pytest.approx(1.0)
    # the course's CosineScheduler(20, warmup_steps=5, base_lr=0.3, final_lr=0.01) at epoch 12
    course = floor + (lr - floor) * (1 + math.cos(math.pi * (12 - 5) / 15)) / 2
    assert lr * f(12 * SPE) == pytest.approx(course)
    assert lr * f(25 * SPE) == pytest.approx(floor)


def test_warmup_without_a_schedule_then_constant():
    f = factor(scheduler="none", warmup_epochs=1)
    assert [f(s) for s in (0, 4, 9, 10, 200)] == pytest.approx([0.1, 0.5, 1.0, 1.0, 1.0])


def test_cosine_without_decay_epochs_runs_to_the_end():
    f = factor(scheduler="cosine", total=100)
    assert f(50) == pytest.approx(0.5) and f(99) < 0.01


def test_multistep_needs_milestones_and_unknown_schedules_are_refused():
    with pytest.raises(ValueError, match="milestones"):
        Regression(scheduler="multistep")
    with pytest.raises(ValueError, match="scheduler must be one of"):
        Regression(scheduler="exponential")


class _Rates(L.Callback):
    def __init__(self):
        self.rates = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"scheduler": "multistep", "milestones": [1, 2], "gamma": 0.5}, [0.4] * 4 + [0.2] * 4 + [0.1] * 4),
        ({"scheduler": "sqrt"}, [0.4 * (1 + s / 4) ** -0.5 for s in range(12)]),
        ({"scheduler": "none", "warmup_epochs": 1}, [0.1, 0.2, 0.3] + [0.4] * 9),
    ],
    ids=["multistep", "sqrt", "warmup"],
)
def test_a_fit_steps_through_the_schedule(kwargs, expected, tmp_path):
    """Through a real Trainer: 3 epochs of 4 batches, the rate each step trains at."""
    from datamodules import SyntheticRegression

    task = Regression(arch="linear", optimizer="sgd", lr=0.4, **kwargs)
    data = SyntheticRegression(num_train=32, num_val=8, batch_size=8)
    rates = _Rates()
    trainer = L.Trainer(max_epochs=3, callbacks=[rates], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(task, datamodule=data)
    assert rates.rates == pytest.approx(expected)
    assert torch.isfinite(next(task.parameters())).all()


def test_an_epoch_of_warm_up_is_an_epoch_when_max_steps_ends_the_run(tmp_path):
    """An epoch is the trainer's 4 batches, not ``max_steps / max_epochs`` (6 / 1000 steps)."""
    from datamodules import SyntheticRegression

    task = Regression(arch="linear", optimizer="sgd", lr=0.4, scheduler="cosine", warmup_epochs=1)
    rates = _Rates()
    trainer = L.Trainer(max_steps=6, max_epochs=1000, callbacks=[rates], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(task, datamodule=SyntheticRegression(num_train=32, num_val=8, batch_size=8))
    cosine = [0.4 * (1 + math.cos(math.pi * s / 2)) / 2 for s in range(2)]  # the 2 steps after it
    assert rates.rates == pytest.approx([0.1, 0.2, 0.3, 0.4, *cosine])
