"""Optimizers and learning-rate schedules for every task, built from torch's own classes.

Optimizers (lecture 72): torch.optim's SGD (with ``momentum``, or ``nesterov``), Adagrad, RMSprop,
Adadelta, Adam, AdamW, and ``zoo.ops.optimizers.Yogi`` (torch.optim has none). Weight decay applies
to weights only (the course's lecture 12), hence parameter groups; a ``model.head`` (the new
classifier of a fine-tuned backbone) may learn at ``head_lr_mult`` times the base rate.

Schedules, stepped every optimizer step and given in epochs (docs/optimizers.md): ``step``
(``StepLR``-like: x``gamma`` every ``step_size`` epochs), ``multistep`` (``MultiStepLR``),
``cosine`` (``CosineAnnealingLR`` to ``min_lr`` at ``decay_epochs`` or the end, then flat),
``sqrt`` (``lr / sqrt(1 + epoch)``: a ``LambdaLR``, torch has no such class) and ``onecycle``
(``OneCycleLR``); any but one-cycle may start with a linear warm-up (``LinearLR``), chained by
``SequentialLR``. Decay epochs count from the start of training, warm-up included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
from torch import nn
from torch.optim import lr_scheduler as S

from zoo.core.errors import ConfigError
from zoo.ops.optimizers import Yogi

Optimizer = Literal["sgd", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "yogi"]
Scheduler = Literal["none", "step", "multistep", "cosine", "sqrt", "onecycle"]

#: the optimizer classes by name; ``sgd`` with ``momentum`` > 0 is SGD with momentum
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD, "nesterov": torch.optim.SGD, "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop, "adadelta": torch.optim.Adadelta, "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW, "yogi": Yogi,
}  # fmt: skip


def check_settings(optimizer: str, scheduler: str, momentum: float, milestones: list[int] | None) -> None:
    """One ``ConfigError`` line for an optimizer or schedule that cannot be built."""
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if scheduler not in get_args(Scheduler):
        raise ConfigError(f"scheduler must be one of {', '.join(get_args(Scheduler))}, got {scheduler!r}")
    if optimizer == "nesterov" and momentum <= 0:
        raise ConfigError("optimizer nesterov needs momentum > 0 (e.g. --model.init_args.momentum 0.9)")
    if scheduler == "multistep" and not milestones:
        raise ConfigError("scheduler multistep needs milestones (epochs, e.g. [15, 30])")


def param_groups(model: nn.Module, lr: float, weight_decay: float, head_lr_mult: float = 1.0) -> list[dict]:
    """Split parameters so that only weights (ndim > 1) decay, and a ``model.head`` learns at
    ``head_lr_mult`` times the base rate."""
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
        }  # fmt: skip
        for (is_head, decays), params in sorted(groups.items())
    ]


def build_optimizer(model: nn.Module, name: Optimizer, lr: float, momentum: float = 0.0,
                    weight_decay: float = 0.0, head_lr_mult: float = 1.0,
                    kwargs: dict[str, Any] | None = None) -> torch.optim.Optimizer:  # fmt: skip
    """``name``'s optimizer over ``model``'s parameter groups; ``kwargs`` are the class's own
    further settings (``betas``, ``alpha``, ``rho``, ...)."""
    kwargs = dict(kwargs or {})
    if name in ("sgd", "nesterov"):
        kwargs.update(momentum=momentum, nesterov=name == "nesterov")
    trained = [p for p in model.parameters() if p.requires_grad]
    if name in ("adam", "adamw") and not {"fused", "foreach"} & kwargs.keys() and trained and all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in trained
    ):
        # torch's fused kernel updates every parameter in one pass: the same Adam, its sums in
        # another order (the first steps' losses agree to float precision), a faster step
        kwargs["fused"] = True
    return OPTIMIZERS[name](param_groups(model, lr, weight_decay, head_lr_mult), lr=lr, **kwargs)


@dataclass(frozen=True)
class Schedule:
    """A schedule's settings, in epochs; ``min_lr`` is the cosine's end for every group."""

    kind: Scheduler = "none"
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    step_size: int = 10
    gamma: float = 0.1
    milestones: list[int] = field(default_factory=list)
    decay_epochs: float | None = None

    @property
    def needed(self) -> bool:
        return self.kind != "none" or self.warmup_epochs > 0


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule, total: int,
                    steps_per_epoch: int) -> S.LRScheduler:  # fmt: skip
    """``schedule`` over ``total`` optimizer steps of ``steps_per_epoch`` each epoch. The groups'
    starting rates are their ``initial_lr`` when set (a schedule rebuilt for a resumed run that
    trains longer starts from the rates the first one started from), else their ``lr``."""
    peaks = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
    if schedule.kind == "onecycle":
        return S.OneCycleLR(optimizer, max_lr=peaks, total_steps=total)
    for g, peak in zip(optimizer.param_groups, peaks, strict=True):
        g["lr"] = g["initial_lr"] = peak
    spe = max(1, steps_per_epoch)
    warmup = int(schedule.warmup_epochs * spe)
    if warmup < 2:  # one step of warm-up is the base rate itself
        warmup = 0
    kind, every = schedule.kind, spe * schedule.step_size
    horizon = int(schedule.decay_epochs * spe) if schedule.decay_epochs else total
    if kind == "cosine":
        main: S.LRScheduler = S.CosineAnnealingLR(optimizer, T_max=max(1, horizon - warmup), eta_min=schedule.min_lr)
    elif kind in ("step", "multistep"):  # counted from the first step, so shifted past the warm-up
        at = [m * spe for m in schedule.milestones] if kind == "multistep" else range(every, total + every, every)
        main = S.MultiStepLR(optimizer, milestones=[max(0, m - warmup) for m in at], gamma=schedule.gamma)
    elif kind == "sqrt":
        main = S.LambdaLR(optimizer, lambda s: (1 + (s + warmup) / spe) ** -0.5)
    else:
        main = S.ConstantLR(optimizer, factor=1.0, total_iters=0)
    parts, milestones = [main], []
    if warmup:
        parts.insert(0, S.LinearLR(optimizer, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1))
        milestones.append(warmup)
    if kind == "cosine" and horizon < total:  # min_lr reached at step ``horizon``, then kept
        parts.append(S.MultiplicativeLR(optimizer, lambda _: 1.0))
        milestones.append(max(horizon, warmup) + 1)
    return parts[0] if len(parts) == 1 else S.SequentialLR(optimizer, parts, milestones)
