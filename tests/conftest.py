"""Shared fixtures: small data sets written in their real on-disk formats."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest


def pytest_configure(config) -> None:
    """Under pytest-xdist, one torch thread per worker and per subprocess it starts: the workers
    already fill the cores, and oversubscribed threads only slow every test down."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


def write_idx(path: Path, array: np.ndarray, magic: int | None = None, compress: bool = True) -> Path:
    """Write ``array`` (uint8) as an IDX file, the format of MNIST and Fashion-MNIST."""
    ndim = array.ndim
    magic = (0x08 << 8 | ndim) if magic is None else magic
    data = struct.pack(">I", magic) + struct.pack(f">{ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture
def fashion_dir(tmp_path: Path) -> Path:
    """A tiny Fashion-MNIST in the original four-file layout: 300 train and 100 test images
    whose label is readable from the pixels (a bright square whose place in a 4x4 grid is the
    class), so a model can learn it in a few steps."""
    return write_fashion_mnist(tmp_path)


@pytest.fixture(scope="session")
def fashion_classifier(tmp_path_factory) -> tuple[Path, Path, dict]:
    """``(checkpoint, data folder, zoo.fit summary)`` of a LeNet (batch norm, Adam) trained for
    3 epochs on the ``fashion_dir`` data: once per session, for the commands that use a trained
    image classifier (zoo predict, zoo export)."""
    from zoo.cli.fit import main

    data = write_fashion_mnist(tmp_path_factory.mktemp("fashion"))
    root = tmp_path_factory.mktemp("fashion_runs")
    summary = main(["--config", str(Path(__file__).parents[1] / "configs" / "lenet_fashion_mnist.yaml"),
                    "--data.init_args.data_dir", str(data), "--data.init_args.val_size", "60",
                    "--data.init_args.batch_size", "32", "--data.init_args.download", "false",
                    "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
                    "--trainer.max_epochs", "3", "--model.init_args.arch", "lenet_bn", "--model.init_args.init",
                    "default", "--model.init_args.optimizer", "adam", "--model.init_args.lr", "0.01"])  # fmt: skip
    return Path(summary["best_checkpoint"]), data, summary


def write_fashion_mnist(folder: Path) -> Path:
    """``fashion_dir``'s files, written into ``folder``."""
    tmp_path = folder
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 100)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, y in enumerate(labels):
            r, c = 7 * (y // 4), 7 * (y % 4)
            images[i, r : r + 6, c : c + 6] = 250
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return tmp_path
