"""What every task shares: model building, parameter groups, optimizer and LR schedule.

Tasks take plain values (``arch``, ``lr``, ...) and call ``save_hyperparameters()`` so that
``load_from_checkpoint`` rebuilds them without the CLI. The optimizer is built here rather
than by LightningCLI's ``--optimizer`` because weight decay applies to weights only (the
course's lecture 12), which needs parameter groups.
"""

from __future__ import annotations

import inspect
import math
from types import SimpleNamespace
from typing import Any, Literal

import lightning as L
import torch
from torch import nn

from zoo.registry import create_model

Optimizer = Literal["sgd", "adam", "adamw"]
Scheduler = Literal["none", "cosine", "step", "onecycle"]
Init = Literal["default", "xavier", "normal"]


def init_weights(model: nn.Module, scheme: Init) -> None:
    """The course's initialisations for Linear and Conv layers: Xavier-uniform or N(0, 0.01)."""
    if scheme == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def param_groups(model: nn.Module, lr: float, weight_decay: float, head_lr_mult: float = 1.0) -> list[dict]:
    """Split parameters so that only weights (ndim > 1) decay, and a ``model.head`` (the new
    classifier of a fine-tuned backbone) may learn at ``head_lr_mult`` times the base rate."""
    head = getattr(model, "head", None)
    head_ids = {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in head_ids, p.ndim > 1), []).append(p)
    return [
        {
            "params": params,
            "lr": lr * (head_lr_mult if is_head else 1.0),
            "weight_decay": weight_decay if decays else 0.0,
        }
        for (is_head, decays), params in sorted(groups.items())
    ]


class ZooTask(L.LightningModule):
    """Base of every task. Subclasses build ``self.model`` and define the steps.

    Args:
        optimizer: ``sgd`` (with ``momentum`` for SGD with momentum), ``adam`` or ``adamw``.
        lr: base learning rate.
        momentum: SGD momentum (0 for plain SGD).
        weight_decay: L2 penalty on weights only (biases and norm parameters are exempt).
        scheduler: ``none``, ``cosine`` (per step, to ``min_lr``), ``step`` (x``gamma`` every
            ``step_size`` epochs) or ``onecycle``.
        warmup_epochs: linear warm-up (in epochs, may be fractional) before ``cosine``/``step``.
        head_lr_mult: learning-rate factor for ``model.head`` when the model has one.
        channels_last: keep weights and image batches in the NHWC memory layout (faster
            convolutions on recent GPUs and with oneDNN on CPUs; see docs/training_options.md).
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
        scheduler: Scheduler = "none",
        warmup_epochs: float = 0.0,
        min_lr: float = 0.0,
        step_size: int = 10,
        gamma: float = 0.1,
        head_lr_mult: float = 1.0,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.step_metrics: dict[str, float] = {}  # the latest of log_step_metrics
        self._reset_train_figures()
        self._channels_last = channels_last
        self._compile = compile
        self.model: nn.Module

    def save_hyperparameters(self, *args: Any, **kwargs: Any) -> None:
        """As Lightning's, but keeps only this task's own arguments: LightningCLI also records
        the data facts linked to targets the task lacks (e.g. ``in_features`` of a classifier),
        which ``load_from_checkpoint`` would then pass back and fail on."""
        super().save_hyperparameters(*args, frame=inspect.currentframe().f_back, **kwargs)
        accepted = set()
        for cls in type(self).__mro__:
            if issubclass(cls, ZooTask):
                accepted |= set(inspect.signature(cls.__init__).parameters)
        for hparams in (self._hparams, self._hparams_initial):
            for key in [k for k in hparams if k not in accepted and not k.startswith("_")]:
                del hparams[key]

    def build_model(self, arch: str, init: Init = "default", **kwargs: Any) -> nn.Module:
        model = create_model(arch, **kwargs)
        if init != "default" and getattr(model, "keeps_weights", False):
            raise ValueError(f"init={init!r} overwrites the loaded weights of {arch!r}; use init: default")
        init_weights(model, init)
        if self._channels_last:
            model = model.to(memory_format=torch.channels_last)
            model.register_forward_pre_hook(_images_channels_last)
        if self._compile:
            model.compile()  # in place, unlike torch.compile(model): state_dict keys do not change
        return model

    def _step(self, batch: Any, stage: str) -> torch.Tensor | None:
        """One batch of ``stage`` (train, val or test): loss and metrics, logged as ``stage/...``."""
        raise NotImplementedError(f"{type(self).__name__} defines no _step")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        self.log_step_metrics({"train/loss_step": loss.detach()})
        if self._trainer is not None and batch_idx + 1 == self._trainer.num_training_batches:
            self._log_train_epoch()
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    # -- the epoch's training figures: per-batch tensors, summed once at the epoch's end -------
    # Rather than a torchmetrics metric or a self.log on every step: on a model as small as
    # LeNet those cost a measurable share of each CPU step (the foundation's target is Lightning
    # within 5% of a hand-written loop, scripts/recipe_bench.py).

    #: training batches whose figures are listed before they are folded into the epoch's sums
    fold_every = 1024

    def on_train_epoch_start(self) -> None:
        self._reset_train_figures()

    def _reset_train_figures(self) -> None:
        self._train_means: dict[str, list[torch.Tensor]] = {}
        self._train_sizes: list[int] = []
        self._train_sums: torch.Tensor | None = None  # size-weighted sums of each mean, then the size
        self._train_logged = False

    def record_train_batch(self, size: int, **means: torch.Tensor) -> None:
        """One training batch's means (``loss=...``, ``acc=...``), kept as tensors, so there is
        no device sync per step. At the epoch's end their size-weighted means, summed over
        every process, are logged as ``train/<name>`` (see ``train_epoch_metrics``)."""
        for name, value in means.items():
            self._train_means.setdefault(name, []).append(value.detach())
        self._train_sizes.append(size)
        if len(self._train_sizes) == self.fold_every:
            self._fold_train_batches()

    def _fold_train_batches(self) -> torch.Tensor | None:
        """Adds the listed batches into the running sums (so long epochs do not pile up small
        tensors); returns the sums: one per recorded name, then the total size."""
        if self._train_sizes:
            first = next(iter(self._train_means.values()))[0]
            sizes = torch.tensor(self._train_sizes, dtype=torch.float32, device=first.device)
            part = torch.stack([*(torch.stack(v).float() @ sizes for v in self._train_means.values()), sizes.sum()])
            self._train_sums = part if self._train_sums is None else self._train_sums + part
            for values in self._train_means.values():
                values.clear()
            self._train_sizes.clear()
        return self._train_sums

    def _log_train_epoch(self) -> None:
        """Logs the epoch's training figures, from its last step, so that they are in place
        before any epoch-end hook (checkpoints, the run report) reads them."""
        sums = self._fold_train_batches()
        if sums is None or self._train_logged:
            return
        sums = self.trainer.strategy.reduce(sums.clone(), reduce_op="sum")
        means = dict(zip(self._train_means, sums[:-1] / sums[-1]))
        for name, value in self.train_epoch_metrics(means).items():
            self.log(name, value, on_step=False, on_epoch=True, prog_bar=True)
        self._train_logged = True

    def on_train_epoch_end(self) -> None:
        self._log_train_epoch()  # a loader without a length: the last step was not known

    def train_epoch_metrics(self, means: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the epoch's mean training figures are logged as; a task may add derived ones."""
        return {f"train/{name}": value for name, value in means.items()}

    def log_step_metrics(self, metrics: dict[str, torch.Tensor | float]) -> None:
        """Step-level training scalars, on the steps the loggers write (every
        ``--trainer.log_every_n_steps``): straight to the loggers, and kept in ``step_metrics``
        for zoo.fit's progress bar. Through ``self.log`` Lightning would rebuild its logged-metric
        dicts after every batch once a step metric exists, a measurable share of a LeNet step on
        a CPU (scripts/recipe_bench.py). Epoch metrics still go through ``self.log``."""
        trainer = self._trainer  # None when the step is called outside a Trainer
        if trainer is None or (trainer.global_step + 1) % trainer.log_every_n_steps:
            return
        self.step_metrics = {k: float(v) for k, v in metrics.items()}
        for logger in trainer.loggers:
            logger.log_metrics({**self.step_metrics, "epoch": trainer.current_epoch}, step=trainer.global_step)

    # -- per-step fast paths: Lightning's bookkeeping around each training step costs a few
    # -- percent of a small model's step on a CPU (scripts/recipe_bench.py measures it) -------
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _cache_step_signature(cls)

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets _current_fx_name around every hook call, ~45 times a training step;
        # nn.Module.__setattr__ first checks it against parameters, buffers and submodules,
        # which it never is.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: float | None = None, gradient_clip_algorithm: str | None = None
    ) -> None:
        """Lightning's behaviour (clip when ``--trainer.gradient_clip_val`` is set), without
        its argument checks on every step when clipping is off."""
        if gradient_clip_val:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        # a task built in Python records only the arguments it was given: fill in the defaults
        hp = SimpleNamespace(**{**_DEFAULTS, **self.hparams})
        groups = param_groups(self.model, hp.lr, hp.weight_decay, hp.head_lr_mult)
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum)
        elif hp.optimizer == "adam":
            opt = torch.optim.Adam(groups, lr=hp.lr)
        elif hp.optimizer == "adamw":
            opt = torch.optim.AdamW(groups, lr=hp.lr)
        else:
            raise ValueError(f"optimizer must be sgd, adam or adamw, got {hp.optimizer!r}")
        if hp.scheduler == "none":
            return opt
        total = self.trainer.estimated_stepping_batches
        if hp.scheduler == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=int(total))
        else:
            steps_per_epoch = max(1, int(total) // max(1, self.trainer.max_epochs or 1))
            warmup = int(hp.warmup_epochs * steps_per_epoch)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, _schedule(hp.scheduler, warmup, int(total), steps_per_epoch, hp)
            )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _images_channels_last(module: nn.Module, args: tuple) -> tuple:
    """A forward pre-hook: image batches (4-D tensors) take the weights' NHWC layout. (A hook
    on the model rather than Lightning's ``on_after_batch_transfer``, which a task cannot
    override beside a data module without a warning on every run.)"""
    return tuple(a.contiguous(memory_format=torch.channels_last) if torch.is_tensor(a) and a.ndim == 4 else a
                 for a in args)  # fmt: skip


def _cache_step_signature(cls: type) -> None:
    """Lightning inspects ``training_step``'s signature on every step (does it take
    ``batch_idx``?), which rebuilds it each time; a function's ``__signature__``, when set, is
    what ``inspect`` returns at once."""
    step = cls.__dict__.get("training_step")
    if inspect.isfunction(step) and "__signature__" not in step.__dict__:
        step.__signature__ = inspect.signature(step)


_cache_step_signature(ZooTask)
_PARAMS = inspect.signature(ZooTask.__init__).parameters
_DEFAULTS = {k: p.default for k, p in _PARAMS.items() if p.default is not p.empty}


def _schedule(kind: str, warmup: int, total: int, steps_per_epoch: int, hp: Any):
    """A per-step LR factor: linear warm-up, then cosine decay to ``min_lr`` or step decay."""
    floor = hp.min_lr / hp.lr if hp.lr > 0 else 0.0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if kind == "cosine":
            t = (step - warmup) / max(1, total - warmup)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        return hp.gamma ** (step // (steps_per_epoch * hp.step_size))

    return factor
