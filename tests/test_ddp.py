"""Distributed data parallel on CPU (gloo): two processes on one machine, and two "nodes"
started by ``torchrun`` that meet on 127.0.0.1 (lecture 33-35's
multi-GPU and multi-machine training, with processes standing in for GPUs and machines)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from datamodules import FashionMNIST
from zoo.run.folder import VERSION_ENV
from zoo.tasks import Classification

ROOT = Path(__file__).parents[1]
RECIPE = ROOT / "configs" / "lenet_fashion_mnist.yaml"


def _args(data_dir: Path, root: Path, name: str, *extra: str) -> list[str]:
    # 240 training, 60 validation and 100 test images: every split halves evenly over 2 ranks,
    # so DistributedSampler pads nothing and the global metric is the whole split's
    return ["-m", "zoo.fit", "--config", str(RECIPE), "--name", name,
            "--data.init_args.data_dir", str(data_dir), "--data.init_args.val_size", "60",
            "--data.init_args.batch_size", "32", "--data.init_args.download", "false",
            "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.max_epochs", "1",
            "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp",
            "--model.init_args.arch", "lenet_bn", "--model.init_args.optimizer", "adam",
            "--model.init_args.lr", "0.01", *extra]  # fmt: skip


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != VERSION_ENV}  # a fresh run folder
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _evaluate(model: Classification, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        logits = model(x)
    return float((logits.argmax(1) == y).float().mean()), float(F.cross_entropy(logits, y))


def test_two_process_ddp_logs_the_global_metrics(fashion_dir, tmp_path):
    run = subprocess.run([sys.executable, *_args(fashion_dir, tmp_path, "ddp", "--trainer.devices", "2")],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert [p.name for p in (tmp_path / "ddp").iterdir()] == ["version_0"]  # rank 1 made no folder
    folder = tmp_path / "ddp" / "version_0"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and (folder / "config.yaml").is_file() and (folder / "curves.png").is_file()

    # the same checkpoint evaluated in one process on the whole split gives the logged numbers
    model = Classification.load_from_checkpoint(metrics["best_checkpoint"], map_location="cpu").eval()
    data = FashionMNIST(str(fashion_dir), val_size=60, download=False)
    data.setup()
    x, y = data._test.__getitems__(range(len(data._test)))
    acc, loss = _evaluate(model, x, y)
    assert metrics["test"]["test/acc"] == pytest.approx(acc, abs=1e-6)
    assert metrics["test"]["test/loss"] == pytest.approx(loss, rel=1e-4)
    xv, yv = data._val.__getitems__(range(len(data._val)))
    assert metrics["best_val"]["val/acc"] == pytest.approx(_evaluate(model, xv, yv)[0], abs=1e-6)
    # and the test can tell: either rank's half alone (DistributedSampler: every 2nd image) differs
    for r in (0, 1):
        assert _evaluate(model, x[r::2], y[r::2])[1] != pytest.approx(loss, rel=1e-3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_loopback_with_torchrun(fashion_dir, tmp_path):
    # two torchrun agents, one process each, as two machines would run them. Static rendezvous
    # (each node told its rank): with c10d, the agent that hosts the rendezvous store may exit
    # first, and the other agent's next poll of the store then fails although its worker
    # finished (a shutdown race of torch's elastic agent, seen here once in a few runs)
    port = _free_port()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                "--master_addr", "127.0.0.1", "--master_port", str(port), "--max_restarts", "0"]  # fmt: skip
    args = _args(fashion_dir, tmp_path, "nodes", "--trainer.num_nodes", "2", "--trainer.devices", "1")
    start = time.perf_counter()
    nodes = [subprocess.Popen([*torchrun, "--node_rank", str(rank), *args], cwd=ROOT, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in range(2)]  # fmt: skip
    try:
        outputs = [node.communicate(timeout=int(os.environ.get("ZOO_TORCHRUN_TIMEOUT", 150)))[0] for node in nodes]
    except subprocess.TimeoutExpired:
        for node in nodes:
            node.kill()
        tails = [node.communicate()[0][-2000:] for node in nodes]
        pytest.fail("the two torchrun nodes did not finish:\n" + "\n----\n".join(tails))
    finally:
        for node in nodes:
            node.kill()
    wall = time.perf_counter() - start
    for node, out in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, out[-3000:]
    metrics = json.loads((tmp_path / "nodes" / "version_0" / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and 0.0 <= metrics["test"]["test/acc"] <= 1.0
    ranks = sorted(line.split(",")[0].rsplit(" ", 1)[1] for out in outputs for line in out.splitlines()
                   if line.startswith("Initializing distributed: GLOBAL_RANK"))  # fmt: skip
    assert ranks == ["0", "1"]  # one world of two, not two worlds of one
    print(f"2-node loopback fit: {wall:.1f} s wall")
