"""scripts/profile_bench.py: the optimizer-step hook profiles the same window of steps on each
side in turn, and marks a side that stopped training before the window closed."""

from __future__ import annotations

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from scripts.profile_bench import StepProfiler, table


def _train(steps: int) -> None:
    model = torch.nn.Linear(8, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(4, 8)).pow(2).mean().backward()
        opt.step()


def test_each_optimizer_gets_its_window_and_a_short_side_is_marked():
    hook = StepProfiler(skip=2, steps=3, top=5)
    handle = register_optimizer_step_post_hook(hook)
    try:
        _train(8)  # the "course": steps 3-5 profiled
        _train(4)  # "ours": stops after 2 of its 3 steps
    finally:
        handle.remove()
        hook.finish()
    first, second = hook.results
    assert (first["steps"], first["short"], second["steps"], second["short"]) == (3, False, 2, True)
    ops = {t["op"]: t for t in first["top"]}
    assert "aten::addmm" in ops and ops["aten::addmm"]["calls_per_step"] == 1.0  # one forward a step
    assert 0 < first["ops_share"] <= 1 and abs(first["ops_share"] + first["outside_ops_share"] - 1) < 1e-3
    assert "the side ended first" in table(hook.results, ["course", "ours"]).splitlines()[len(first["top"]) + 2]
