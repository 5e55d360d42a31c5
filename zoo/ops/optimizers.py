"""The course's optimisation algorithms from scratch (lectures 72, zh.d2l.ai chapter 11), and Yogi.

Each from-scratch function updates ``params`` in place from their ``.grad`` and keeps its running
statistics in ``states`` (one dict per parameter, created on the first call), in the course's
style: ``sgd_momentum(params, states, lr=0.01, momentum=0.9)``. They are the teaching reference;
what trains is ``torch.optim`` (tests/test_optimizers.py checks each against it step for step).

Where the course's formula differs from torch.optim's and the papers', these follow the papers,
so that the two agree: the course adds ``eps`` inside the square root for Adagrad and RMSProp
(``sqrt(s + eps)``); Duchi et al. and Tieleman & Hinton add it outside (``sqrt(s) + eps``).

``Yogi`` is a ``torch.optim.Optimizer``, since torch.optim has none: Zaheer, Reddi, Sachan, Kale
and Kumar, "Adaptive Methods for Nonconvex Optimization", NeurIPS 2018 (Algorithm 2), with Adam's
bias correction as the course uses it (zh.d2l.ai 11.10).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from zoo.core.errors import ConfigError


def _state(states: list[dict], params: list[torch.Tensor], **zeros_like: bool) -> None:
    """One dict per parameter, its buffers zero-initialised on the first call."""
    if not states:
        states.extend({name: torch.zeros_like(p) for name in zeros_like} for p in params)


@torch.no_grad()
def sgd(params: list[torch.Tensor], states: list[dict], lr: float) -> None:
    """Minibatch SGD (11.5): ``p <- p - lr g``."""
    for p in params:
        p -= lr * p.grad


@torch.no_grad()
def sgd_momentum(params: list[torch.Tensor], states: list[dict], lr: float, momentum: float,
                 nesterov: bool = False) -> None:  # fmt: skip
    """Momentum (11.6): ``v <- momentum v + g``, ``p <- p - lr v``. Nesterov's variant (Sutskever
    et al. 2013, torch.optim's form) steps along ``g + momentum v`` instead of ``v``."""
    _state(states, params, v=True)
    for p, s in zip(params, states):
        s["v"].mul_(momentum).add_(p.grad)
        p -= lr * (p.grad + momentum * s["v"] if nesterov else s["v"])


@torch.no_grad()
def adagrad(params: list[torch.Tensor], states: list[dict], lr: float, eps: float = 1e-10) -> None:
    """Adagrad (11.7, Duchi et al. 2011): ``s <- s + g^2``, ``p <- p - lr g / (sqrt(s) + eps)``."""
    _state(states, params, s=True)
    for p, st in zip(params, states):
        st["s"].add_(p.grad.square())
        p -= lr * p.grad / (st["s"].sqrt() + eps)


@torch.no_grad()
def rmsprop(params: list[torch.Tensor], states: list[dict], lr: float, gamma: float = 0.9,
            eps: float = 1e-8) -> None:  # fmt: skip
    """RMSProp (11.8): ``s <- gamma s + (1 - gamma) g^2``, ``p <- p - lr g / (sqrt(s) + eps)``
    (torch.optim.RMSprop calls ``gamma`` ``alpha``)."""
    _state(states, params, s=True)
    for p, st in zip(params, states):
        st["s"].mul_(gamma).add_((1 - gamma) * p.grad.square())
        p -= lr * p.grad / (st["s"].sqrt() + eps)


@torch.no_grad()
def adadelta(params: list[torch.Tensor], states: list[dict], rho: float = 0.9, eps: float = 1e-6,
             lr: float = 1.0) -> None:  # fmt: skip
    """Adadelta (11.9, Zeiler 2012): no learning rate of its own (``lr`` 1 is the paper's rule):
    ``s <- rho s + (1 - rho) g^2``, ``g' = sqrt(delta + eps) / sqrt(s + eps) g``, ``p <- p - lr g'``,
    ``delta <- rho delta + (1 - rho) g'^2``."""
    _state(states, params, s=True, delta=True)
    for p, st in zip(params, states):
        st["s"].mul_(rho).add_((1 - rho) * p.grad.square())
        g = (st["delta"] + eps).sqrt() / (st["s"] + eps).sqrt() * p.grad
        p -= lr * g
        st["delta"].mul_(rho).add_((1 - rho) * g.square())


@torch.no_grad()
def adam(params: list[torch.Tensor], states: list[dict], lr: float, betas: tuple[float, float] = (0.9, 0.999),
         eps: float = 1e-8) -> None:  # fmt: skip
    """Adam (11.10, Kingma & Ba 2015): leaky averages ``v`` of ``g`` and ``s`` of ``g^2``, bias
    corrected by ``1 - beta^t``, ``p <- p - lr v_hat / (sqrt(s_hat) + eps)``."""
    _adaptive(params, states, lr, betas, eps, yogi=False)


@torch.no_grad()
def yogi(params: list[torch.Tensor], states: list[dict], lr: float, betas: tuple[float, float] = (0.9, 0.999),
         eps: float = 1e-3) -> None:  # fmt: skip
    """Yogi (11.10): Adam with an additive second moment, ``s <- s + (1 - beta2) g^2 sign(g^2 - s)``,
    which grows or shrinks ``s`` by at most ``(1 - beta2) g^2`` a step."""
    _adaptive(params, states, lr, betas, eps, yogi=True)


def _adaptive(params, states, lr, betas, eps, yogi: bool) -> None:
    _state(states, params, v=True, s=True)
    beta1, beta2 = betas
    for p, st in zip(params, states):
        st["t"] = st.get("t", 0) + 1
        g2 = p.grad.square()
        st["v"].mul_(beta1).add_((1 - beta1) * p.grad)
        if yogi:
            st["s"].add_((1 - beta2) * g2 * torch.sign(g2 - st["s"]))
        else:
            st["s"].mul_(beta2).add_((1 - beta2) * g2)
        v_hat = st["v"] / (1 - beta1 ** st["t"])
        s_hat = st["s"] / (1 - beta2 ** st["t"])
        p -= lr * v_hat / (s_hat.sqrt() + eps)


class Yogi(torch.optim.Optimizer):
    """Yogi (Zaheer et al., NeurIPS 2018): Adam whose second moment moves additively,
    ``s <- s - (1 - beta2) sign(s - g^2) g^2``, so one large gradient cannot inflate it as fast as
    Adam's leaky average, nor a run of small ones shrink it as fast. Bias-corrected as Adam and the
    course are; ``eps`` 1e-3 as the paper and the course use. ``weight_decay`` is L2 added to the
    gradient (as torch.optim.Adam's)."""

    def __init__(self, params: Iterable, lr: float = 1e-2, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-3, weight_decay: float = 0.0) -> None:  # fmt: skip
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ConfigError(f"Yogi: lr, eps, weight_decay must be >= 0 and betas in [0, 1), got "
                             f"lr={lr}, eps={eps}, weight_decay={weight_decay}, betas={betas}")  # fmt: skip
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad if group["weight_decay"] == 0 else p.grad + group["weight_decay"] * p
                state = self.state[p]
                if not state:
                    state["step"], state["v"], state["s"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                state["step"] += 1
                g2 = g.square()
                state["v"].mul_(beta1).add_(g, alpha=1 - beta1)
                state["s"].addcmul_(torch.sign(g2 - state["s"]), g2, value=1 - beta2)
                v_hat = state["v"] / (1 - beta1 ** state["step"])
                s_hat = state["s"] / (1 - beta2 ** state["step"])
                p.addcdiv_(v_hat, s_hat.sqrt().add_(group["eps"]), value=-group["lr"])
        return loss
