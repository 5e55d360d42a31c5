"""Where a training step's time goes, on the course's side of a bench and on ours: the bench runs
as it always does, in this process, and ``torch.profiler`` (CPU) records optimizer steps
``[--skip, --skip + --steps)`` of each optimizer the bench creates, one after the other (the
benches train the course's side first, then ours). A global optimizer-step hook
(``register_optimizer_step_post_hook``) marks the steps, so the bench scripts need no change.

Prints, per side, the operators with the largest self CPU time as a share of the profiled
steps' wall time, and what no operator accounts for (Python, data loading, the training loop's
own work); writes the same as JSON with ``--json``. Shares, not speeds: they hold better on a
loaded machine than absolute times do. Run it at one thread so that self times add up, and put
the window between our side's validations, which would otherwise count as step time (the
Transformer recipe validates every 10 epochs of 10 steps, ``bert_bench`` every 10 steps):

    OMP_NUM_THREADS=1 python -m scripts.profile_bench --skip 105 --steps 90 -- \\
        scripts.translation_bench --d2l_path DIR --archs transformer --epochs 21
    OMP_NUM_THREADS=1 python -m scripts.profile_bench --skip 8 --steps 14 -- \\
        scripts.detection_bench --d2l_path DIR --epochs 2
    OMP_NUM_THREADS=1 python -m scripts.profile_bench --skip 11 --steps 9 -- \\
        scripts.bert_bench --d2l_path DIR --steps 20

Lightning runs the forward and backward inside ``optimizer.step(closure)``, so on our side the
``Optimizer.step#...`` entry's self time is the Python of the whole training step (Lightning's
loop, the task's ``training_step``, logging), not the optimizer's arithmetic.
"""

from __future__ import annotations

import argparse
import importlib
import time
import weakref
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.profiler import ProfilerActivity, profile

from zoo.core.io import write_json
from zoo.run.errors import run_command


class StepProfiler:
    """The optimizer-step hook: profiles steps ``[skip, skip + steps)`` of each optimizer in
    turn, one profile open at a time."""

    def __init__(self, skip: int, steps: int, top: int) -> None:
        self.skip, self.steps, self.top = skip, steps, top
        self.counts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # optimizer -> steps taken
        self.active: Any = None  # the optimizer being profiled
        self.results: list[dict[str, Any]] = []

    def __call__(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        n = self.counts[optimizer] = self.counts.get(optimizer, 0) + 1
        if self.active is not None and self.active() is not optimizer:
            self.finish()  # that side stopped training before --steps: keep what it had (marked short)
        if self.active is None and n == self.skip:
            self.active, self.seen = weakref.ref(optimizer), 0
            self.prof = profile(activities=[ProfilerActivity.CPU])
            self.prof.start()
            self.start = time.perf_counter()
        elif self.active is not None:
            self.seen += 1
            if self.seen == self.steps:
                self.finish()

    def finish(self) -> None:
        if self.active is not None:
            self.prof.stop()
            self.results.append(self.summary(time.perf_counter() - self.start, self.seen))
            self.active = None

    def summary(self, wall: float, steps: int) -> dict[str, Any]:
        events = [e for e in self.prof.key_averages() if e.self_cpu_time_total > 0]
        events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
        wall_us = wall * 1e6
        in_ops = sum(e.self_cpu_time_total for e in events)
        steps = max(1, steps)
        return {"steps": steps, "short": steps < self.steps, "step_ms": round(wall * 1e3 / steps, 2),
                "ops_share": round(in_ops / wall_us, 4), "outside_ops_share": round(1 - in_ops / wall_us, 4),
                "top": [{"op": e.key, "share": round(e.self_cpu_time_total / wall_us, 4),
                         "calls_per_step": round(e.count / steps, 1)} for e in events[: self.top]]}  # fmt: skip


def table(results: list[dict[str, Any]], labels: list[str]) -> str:
    lines = []
    for label, r in zip(labels, results, strict=False):
        short = " (the side ended first: the profile holds what followed its last step)" if r["short"] else ""
        lines += [f"{label}: {r['steps']} steps{short}; operators {r['ops_share']:.1%} of the steps' wall time, "
                  f"outside any operator {r['outside_ops_share']:.1%}",
                  f"  {'share':>6}  {'calls/step':>10}  op"]  # fmt: skip
        lines += [f"  {t['share']:>6.1%}  {t['calls_per_step']:>10}  {t['op']}" for t in r["top"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--skip", type=int, default=20, help="optimizer steps of each side before the profile opens")
    p.add_argument("--steps", type=int, default=150, help="steps profiled on each side")
    p.add_argument("--top", type=int, default=12, help="operators listed per side")
    p.add_argument("--labels", nargs="+", default=["course", "ours"], help="names of the profiled sides, in order")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("bench", nargs=argparse.REMAINDER, help="-- then the bench module and its options")
    args = p.parse_args(argv)
    bench = args.bench[1:] if args.bench[:1] == ["--"] else args.bench
    if not bench:
        p.error("name the bench after --, e.g. -- scripts.bert_bench --d2l_path DIR")
    hook = StepProfiler(args.skip, args.steps, args.top)
    handle = register_optimizer_step_post_hook(hook)
    try:
        importlib.import_module(bench[0]).main(bench[1:])
    finally:
        handle.remove()
        hook.finish()
    print(table(hook.results, args.labels))
    out = {"bench": bench, "threads": torch.get_num_threads(), "sides": dict(zip(args.labels, hook.results))}
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    run_command(main)
