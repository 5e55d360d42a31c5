"""The course's from-scratch optimizers (zoo.ops.optimizers) against torch.optim step for step on
the same parameters and gradients; Yogi against its published update rule; every optimizer name
of ZooTask builds and trains."""

import pytest
import torch

from zoo.ops import optimizers as scratch
from zoo.ops.optimizers import Yogi

STEPS = 25


def _grads(seed: int, shapes: list[tuple[int, ...]]) -> list[list[torch.Tensor]]:
    """STEPS gradients per parameter, of mixed scales (so eps and the square roots matter)."""
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=g, dtype=torch.float64) * 10 ** torch.randint(-3, 2, (), generator=g)
             for s in shapes] for _ in range(STEPS)]  # fmt: skip


CASES = [
    # (name, from-scratch step, its hyper-parameters, torch class, torch's equivalent arguments)
    ("sgd", scratch.sgd, {"lr": 0.05}, torch.optim.SGD, {"lr": 0.05}),
    ("momentum", scratch.sgd_momentum, {"lr": 0.01, "momentum": 0.9}, torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
    ("nesterov", scratch.sgd_momentum, {"lr": 0.01, "momentum": 0.9, "nesterov": True}, torch.optim.SGD,
     {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    ("adagrad", scratch.adagrad, {"lr": 0.1}, torch.optim.Adagrad, {"lr": 0.1}),
    ("rmsprop", scratch.rmsprop, {"lr": 0.01, "gamma": 0.9}, torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9}),
    ("adadelta", scratch.adadelta, {"rho": 0.9}, torch.optim.Adadelta, {"rho": 0.9}),
    ("adam", scratch.adam, {"lr": 0.01}, torch.optim.Adam, {"lr": 0.01}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "step", "hyper", "cls", "torch_kwargs"), CASES, ids=[c[0] for c in CASES])
def test_scratch_equals_torch_step_for_step(name, step, hyper, cls, torch_kwargs):
    shapes = [(5, 3), (3,)]
    g = torch.Generator().manual_seed(0)
    init = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    ours = [p.clone() for p in init]
    theirs = [torch.nn.Parameter(p.clone()) for p in init]
    opt, states = cls(theirs, **torch_kwargs), []
    for t, grads in enumerate(_grads(1, shapes)):
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        step(ours, states, **hyper)
        opt.step()
        for p, q in zip(ours, theirs):
            torch.testing.assert_close(p, q.detach(), rtol=1e-10, atol=1e-12, msg=f"{name}: step {t + 1} differs")
    assert not torch.equal(ours[0], init[0])  # the parameters moved


def _yogi_by_the_paper(x, grads, lr, beta1, beta2, eps):
    """Zaheer et al. 2018, Algorithm 2 (with Adam's bias correction, as the course's yogi):
    m_t = b1 m + (1 - b1) g; v_t = v - (1 - b2) sign(v - g^2) g^2; x -= lr m_hat / (sqrt(v_hat) + eps)."""
    m, v, out = torch.zeros_like(x), torch.zeros_like(x), []
    for t, g in enumerate(grads, 1):
        m = beta1 * m + (1 - beta1) * g
        v = v - (1 - beta2) * torch.sign(v - g * g) * g * g
        x = x - lr * (m / (1 - beta1**t)) / (torch.sqrt(v / (1 - beta2**t)) + eps)
        out.append(x)
    return out


def test_yogi_follows_its_published_rule():
    x0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grads = [g[0] for g in _grads(2, [(4, 3)])]
    expected = _yogi_by_the_paper(x0, grads, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-3)
    p = torch.nn.Parameter(x0.clone())
    opt = Yogi([p], lr=0.01)
    ours, states = [x0.clone()], []
    for t, g in enumerate(grads):
        p.grad, ours[0].grad = g.clone(), g.clone()
        opt.step()
        scratch.yogi(ours, states, lr=0.01)
        torch.testing.assert_close(p.detach(), expected[t], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours[0], expected[t], rtol=1e-10, atol=1e-12)


def test_yogi_is_not_adam():
    """After a large gradient, a small one shrinks Adam's second moment by a factor beta2 but
    Yogi's only by (1 - beta2) g^2: Yogi keeps its caution, and its step stays smaller."""
    grads, beta2 = [torch.tensor([10.0]), torch.tensor([0.01])], 0.5
    moments, steps = {}, {}
    for cls in (Yogi, torch.optim.Adam):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = cls([p], lr=0.1, betas=(0.9, beta2), eps=1e-3)
        for g in grads:
            before = p.item()
            p.grad = g.clone()
            opt.step()
        state = opt.state[p]
        moments[cls.__name__] = float(state["s"] if cls is Yogi else state["exp_avg_sq"])
        steps[cls.__name__] = abs(p.item() - before)
    assert moments["Adam"] == pytest.approx(beta2 * (1 - beta2) * 100 + (1 - beta2) * 1e-4)
    assert moments["Yogi"] == pytest.approx((1 - beta2) * 100 - (1 - beta2) * 1e-4)
    assert steps["Yogi"] < steps["Adam"]


def test_yogi_checkpoints_and_refuses_bad_settings():
    p = torch.nn.Parameter(torch.ones(2))
    opt = Yogi([p], lr=0.1, weight_decay=0.1)
    p.grad = torch.ones(2)
    opt.step()
    again = Yogi([torch.nn.Parameter(p.detach().clone())], lr=0.1)
    again.load_state_dict(opt.state_dict())
    assert again.state_dict()["state"][0]["step"] == 1
    with pytest.raises(ValueError, match="betas"):
        Yogi([p], betas=(0.9, 1.0))


@pytest.mark.parametrize("name", ["sgd", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "yogi"])
def test_every_optimizer_name_builds_its_class_and_trains(name):
    from zoo.tasks import Regression
    from zoo.tasks.optim import OPTIMIZERS

    task = Regression(arch="linear", in_features=3, optimizer=name, lr=0.05, momentum=0.9,
                      optimizer_kwargs={"eps": 1e-6} if name != "sgd" and name != "nesterov" else None)  # fmt: skip
    opt = task.configure_optimizers()
    assert type(opt) is OPTIMIZERS[name]
    if name == "nesterov":
        assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(task(x), y)
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
    assert loss.item() < first


def test_bad_optimizer_settings_are_refused():
    from zoo.tasks import Regression

    with pytest.raises(ValueError, match="one of sgd, nesterov"):
        Regression(optimizer="lbfgs")
    with pytest.raises(ValueError, match="nesterov needs momentum"):
        Regression(optimizer="nesterov")


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_fused_adam_is_the_default_and_its_first_steps_equal_the_unfused_ones(name):
    """Adam and AdamW take torch's fused kernel unless a recipe says otherwise: the same update in
    another summation order, so the first steps' losses agree to float precision."""
    from zoo.tasks import Classification

    x = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(1))
    losses = {}
    for fused in (None, False):
        torch.manual_seed(0)
        task = Classification(arch="lenet", optimizer=name, lr=0.01, weight_decay=1e-4,
                              optimizer_kwargs=None if fused is None else {"fused": False})  # fmt: skip
        opt = task.configure_optimizers()
        assert bool(opt.defaults.get("fused")) is (fused is None)
        losses[fused] = []
        for _ in range(5):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(task(x), y)
            loss.backward()
            opt.step()
            losses[fused].append(loss.item())
    assert losses[None] == pytest.approx(losses[False], rel=1e-5)
    assert losses[None][-1] < losses[None][0]
