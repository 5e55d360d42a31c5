"""What every task shares: model building, the train/val/test step dispatch, the data facts
it keeps in checkpoints, and its optimizer and schedule (built by ``zoo.tasks.optim``).

Tasks take plain values (``arch``, ``lr``, ...) and call ``save_hyperparameters()`` so that
``load_from_checkpoint`` rebuilds them without the CLI. The optimizer is built here rather
than by LightningCLI's ``--optimizer`` because weight decay applies to weights only (the
course's lecture 12), which needs parameter groups.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import Metric

from zoo.core.errors import ConfigError
from zoo.models.common import Init, init_weights
from zoo.models.registry import create_model
from zoo.tasks.optim import Optimizer, Schedule, Scheduler, build_optimizer, build_scheduler, check_settings

#: facts a data module exposes, which zoo.fit links to the task's argument of the same name
DATA_FACTS = ("num_classes", "in_channels", "in_features", "vocab_size")


class ZooTask(L.LightningModule):
    """Base of every task. Subclasses build ``self.model`` and define ``_step``.

    A subclass's ``_step(batch, stage)`` computes one batch's loss and logs its metrics as
    ``stage/<name>`` (the training side with ``on_step=False, on_epoch=True``: an epoch's
    size-weighted mean over every process). The step loss is logged here as ``train/loss_step``.

    Args:
        optimizer, lr, momentum, weight_decay, optimizer_kwargs: the optimizer (``sgd``,
            ``nesterov``, ``adagrad``, ``rmsprop``, ``adadelta``, ``adam``, ``adamw``, ``yogi``), its
            base rate, SGD's momentum, the L2 penalty on weights only, the class's further settings
            (``{betas: [0.9, 0.999], eps: 1e-6}``): ``zoo.tasks.optim.build_optimizer``.
        scheduler, warmup_epochs, min_lr, step_size, gamma, milestones, decay_epochs: the per-step
            schedule (``none``, ``step``, ``multistep``, ``cosine``, ``sqrt``, ``onecycle``), in
            epochs, with a linear warm-up: ``zoo.tasks.optim.build_scheduler``.
        head_lr_mult: learning-rate factor for ``model.head`` when the model has one.
        channels_last: keep weights and image batches in the NHWC memory layout (faster
            convolutions on recent GPUs and with oneDNN on CPUs; see docs/training_options.md).
            Unset (None): on a CUDA device for a model with 2-d convolutions, else not.
        compile: ``torch.compile`` the model in place (checkpoint keys stay the same).
    """

    #: the validation metric that picks the best checkpoint, and whether higher is better
    monitor: tuple[str, str] = ("val/loss", "min")

    def __init__(
        self,
        optimizer: Optimizer = "sgd",
        lr: float = 0.1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        optimizer_kwargs: dict[str, Any] | None = None,
        scheduler: Scheduler = "none",
        warmup_epochs: float = 0.0,
        min_lr: float = 0.0,
        step_size: int = 10,
        gamma: float = 0.1,
        milestones: list[int] | None = None,
        decay_epochs: float | None = None,
        head_lr_mult: float = 1.0,
        channels_last: bool | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        check_settings(optimizer, scheduler, momentum, milestones)
        self.optimizer_name, self.lr, self.momentum, self.weight_decay = optimizer, lr, momentum, weight_decay
        self.optimizer_kwargs = dict(optimizer_kwargs or {})
        self.scheduler_name, self.warmup_epochs, self.min_lr = scheduler, warmup_epochs, min_lr
        self.step_size, self.gamma, self.head_lr_mult = step_size, gamma, head_lr_mult
        self.milestones, self.decay_epochs = sorted(milestones or []), decay_epochs
        self.channels_last, self.compile_model = channels_last, compile
        self.model: nn.Module

    def save_hyperparameters(self, *args: Any, **kwargs: Any) -> None:
        """As Lightning's, without the data facts this task does not take: LightningCLI records
        every linked fact among the hyperparameters, even one the task's class lacks, and
        ``load_from_checkpoint`` would pass it back and fail."""
        accepted = {name for cls in type(self).__mro__ if issubclass(cls, ZooTask)
                    for name in inspect.signature(cls.__init__).parameters}  # fmt: skip
        ignore = [fact for fact in DATA_FACTS if fact not in accepted]
        super().save_hyperparameters(*args, ignore=ignore, frame=inspect.currentframe().f_back, **kwargs)

    def build_model(self, arch: str, init: Init = "default", **kwargs: Any) -> nn.Module:
        model = create_model(arch, **kwargs)
        if init != "default" and getattr(model, "keeps_weights", False):
            raise ConfigError(f"init={init!r} overwrites the loaded weights of {arch!r}; use init: default")
        init_weights(model, init)
        if self.channels_last:
            _use_channels_last(model)
        if self.compile_model:
            model.compile()  # in place, unlike torch.compile(model): state_dict keys do not change
        return model

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    # -- what a task keeps of its data: from the data module, then in every checkpoint -----------
    #: data-module attributes the task copies in ``setup`` and stores in every checkpoint, so its
    #: commands need no data set: name -> the class that rebuilds it (``to_dict``/``from_dict``,
    #: e.g. a ``Vocab``) or None for a plain value (a list of class names, a dict, a number).
    #: ``zoo.core.checkpoint.load_task`` refuses a checkpoint that lacks one, in one line.
    data_state: dict[str, type | None] = {}

    def setup(self, stage: str) -> None:
        if (
            self.channels_last is None
            and self.trainer.strategy.root_device.type == "cuda"
            and any(isinstance(m, nn.Conv2d) for m in self.model.modules())
        ):  # before the model moves to the device: .to(device) keeps the layout
            self.channels_last = True
            _use_channels_last(self.model)
        data = getattr(self.trainer, "datamodule", None)
        found = {name: getattr(data, name, None) for name in self.data_state}
        if any(v is None for n, v in found.items() if self.data_state[n] is not None):
            return  # vocabularies come together or not at all (e.g. synthetic data has none)
        problems = self.data_state_problems({n: v for n, v in found.items() if v is not None})
        if problems:
            raise ConfigError(f"{type(data).__name__} does not fit the model: {'; '.join(problems)}")
        for name, value in found.items():
            if value is not None:
                setattr(self, name, value)

    def data_state_problems(self, state: dict[str, Any] | None = None) -> list[str]:
        """Why the data facts ``state`` (default: the task's own) do not fit the model: class names
        not ``num_classes``, vocabulary sizes not ``vocab_size``."""
        state = {n: getattr(self, n, None) for n in self.data_state} if state is None else state
        problems = []
        classes, num_classes = state.get("classes"), self.hparams.get("num_classes")
        if classes is not None and num_classes is not None and len(classes) != num_classes:
            problems.append(f"{len(classes)} class names for num_classes={num_classes}")
        kept = [state.get(n) for n, kind in self.data_state.items() if kind is not None]
        sizes = [len(v) for v in kept if hasattr(v, "__len__")] if None not in kept else []  # all or none
        expected = self.hparams.get("vocab_size")
        if sizes and expected is not None and sizes != list(expected if isinstance(expected, (list, tuple))
                                                             else [expected]):  # fmt: skip
            problems.append(f"vocabulary sizes {sizes} for vocab_size={expected}")
        return problems

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for name, kind in self.data_state.items():
            value = getattr(self, name, None)
            if value is not None:
                checkpoint[name] = value.to_dict() if kind is not None else value

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for name, kind in self.data_state.items():
            if name in checkpoint:
                setattr(self, name, kind.from_dict(checkpoint[name]) if kind is not None else checkpoint[name])

    # -- steps ---------------------------------------------------------------------------------
    def _step(self, batch: Any, stage: str) -> torch.Tensor | None:
        """One batch of ``stage`` (train, val or test): loss and metrics, logged as ``stage/...``."""
        raise NotImplementedError(f"{type(self).__name__} defines no _step")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        # Lightning reads every progress-bar value on the host after each step: free on the CPU,
        # a wait for the device every step elsewhere, where the loss goes to the logger alone
        # (read every log_every_n_steps) and the bar shows the epoch's figures
        self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, prog_bar=loss.device.type == "cpu")
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    # -- optimizer and schedule ----------------------------------------------------------------
    @property
    def schedule(self) -> Schedule:
        return Schedule(self.scheduler_name, self.warmup_epochs, self.min_lr, self.step_size, self.gamma,
                        self.milestones, self.decay_epochs)  # fmt: skip

    def configure_optimizers(self):
        opt = build_optimizer(self.model, self.optimizer_name, self.lr, self.momentum, self.weight_decay,
                              self.head_lr_mult, self.optimizer_kwargs)  # fmt: skip
        if not self.schedule.needed:
            return opt
        sched = self.build_scheduler(opt, int(self.trainer.estimated_stepping_batches))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def build_scheduler(self, optimizer: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LRScheduler:
        """The per-step schedule over ``total`` optimizer steps (also what a resumed run that trains
        longer rebuilds: ``zoo.run.resume.ScheduleHorizon``). An epoch is the trainer's number of
        training batches over its gradient accumulation (not ``total / max_epochs``, which is wrong
        when ``max_steps`` ends the run first)."""
        t = self.trainer
        batches = t.num_training_batches
        if not isinstance(batches, int) or batches <= 0:  # unknown (an iterable data set): the old estimate
            per_epoch = total // max(1, t.max_epochs or 1)
        else:
            per_epoch = math.ceil(batches / max(1, t.accumulate_grad_batches))
        return build_scheduler(optimizer, self.schedule, total, max(1, per_epoch))


class EpochMean(Metric):
    """The weighted mean of a loss over an epoch's batches and every process:
    ``update(value, weight=n)`` adds ``value * n`` and ``n``, ``compute`` divides.

    Not torchmetrics' ``MeanMetric``: its NaN check reads every update on the host (a device
    sync per step), and with that check off (``nan_strategy="disable"``) it replaces the weights
    by ones (torchmetrics 1.9.0), which turns a token-weighted mean into a mean of batch means.
    A NaN shows in the mean as NaN rather than being dropped (a training loss is watched by
    ``zoo.run.faults.FiniteLossGuard``)."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("weight", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, value: torch.Tensor | float, weight: torch.Tensor | float = 1.0) -> None:
        value = torch.as_tensor(value, dtype=self.total.dtype, device=self.device)
        weight = torch.broadcast_to(torch.as_tensor(weight, dtype=self.total.dtype, device=self.device), value.shape)
        self.total += (value * weight).sum()
        self.weight += weight.sum()

    def compute(self) -> torch.Tensor:
        return self.total / self.weight


def _use_channels_last(model: nn.Module) -> None:
    """Weights in NHWC, in place (the parameters stay the same objects), and every 4-d input
    converted on its way in."""
    model.to(memory_format=torch.channels_last)
    model.register_forward_pre_hook(_images_channels_last)


def _images_channels_last(module: nn.Module, args: tuple) -> tuple:
    """A forward pre-hook: image batches (4-D tensors) take the weights' NHWC layout. (A hook
    on the model rather than Lightning's ``on_after_batch_transfer``, which a task cannot
    override beside a data module without a warning on every run.)"""
    return tuple(a.contiguous(memory_format=torch.channels_last) if torch.is_tensor(a) and a.ndim == 4 else a
                 for a in args)  # fmt: skip
