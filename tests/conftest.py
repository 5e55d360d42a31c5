"""Shared fixtures: small data sets written in their real on-disk formats."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest


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
