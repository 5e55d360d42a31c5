import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.fashion_mnist import DEBIAN_DIR, FashionMNIST, IDXError, read_idx
from tests.conftest import write_idx


def _dm(folder: Path, **kw) -> FashionMNIST:
    kw.setdefault("download", False)
    dm = FashionMNIST(data_dir=str(folder), batch_size=32, val_size=50, **kw)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_reads_idx_files_and_splits(fashion_dir):
    dm = _dm(fashion_dir)
    assert (len(dm._train), len(dm._val), len(dm._test)) == (250, 50, 100)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    # pixels and labels line up with what was written
    images = read_idx(fashion_dir / "train-images-idx3-ubyte.gz")
    labels = read_idx(fashion_dir / "train-labels-idx1-ubyte.gz")
    assert images.shape == (300, 28, 28) and labels.shape == (300,)
    assert torch.equal(dm._test.tensors[1], read_idx(fashion_dir / "t10k-labels-idx1-ubyte.gz").long())


def test_split_is_seeded(fashion_dir):
    a, b, c = _dm(fashion_dir, seed=1), _dm(fashion_dir, seed=1), _dm(fashion_dir, seed=2)
    assert torch.equal(a._val.tensors[1], b._val.tensors[1])
    assert not torch.equal(a._val.tensors[0], c._val.tensors[0])


def test_resize_and_normalize(fashion_dir):
    dm = _dm(fashion_dir, resize=96, normalize=True)
    x, _ = next(iter(dm.val_dataloader()))
    assert x.shape[-2:] == (96, 96)
    assert x.mean().abs() < 3


def test_torchvision_layout_and_plain_files(tmp_path, fashion_dir):
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in fashion_dir.glob("*.gz"):  # unpacked, as torchvision leaves them beside the .gz
        (raw / f.stem).write_bytes(gzip.decompress(f.read_bytes()))
    assert len(_dm(tmp_path / "root")._test) == 100


def test_truncated_file_is_a_clear_error(fashion_dir):
    path = fashion_dir / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(IDXError, match="train-images-idx3-ubyte.gz: truncated"):
        _dm(fashion_dir)


def test_cut_gzip_stream_is_a_clear_error(fashion_dir):
    path = fashion_dir / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(IDXError, match="t10k-labels-idx1-ubyte.gz: cannot decompress"):
        _dm(fashion_dir)


def test_wrong_magic_number_is_a_clear_error(fashion_dir):
    write_idx(fashion_dir / "t10k-labels-idx1-ubyte.gz", np.zeros(100, np.uint8), magic=0x00000999)
    with pytest.raises(IDXError, match="bad magic number 0x00000999"):
        _dm(fashion_dir)


def test_count_mismatch_is_a_clear_error(fashion_dir):
    write_idx(fashion_dir / "t10k-labels-idx1-ubyte.gz", np.zeros(99, np.uint8))
    with pytest.raises(IDXError, match="100 images but 99 labels"):
        _dm(fashion_dir)


def test_missing_files_offline_names_files_and_places(tmp_path, monkeypatch):
    import datamodules.fashion_mnist as fm

    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    dm = FashionMNIST(data_dir=str(tmp_path / "nowhere"), download=False)
    with pytest.raises(FileNotFoundError) as err:
        dm.prepare_data()
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "nowhere") in msg
    assert "apt-get install dataset-fashion-mnist" in msg


def test_failed_download_names_files_and_places(tmp_path, monkeypatch):
    import datamodules.fashion_mnist as fm

    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(fm, "MIRROR", "http://127.0.0.1:9/")  # nothing listens on the discard port
    dm = FashionMNIST(data_dir=str(tmp_path / "nowhere"), download=True)
    with pytest.raises(FileNotFoundError, match="the download from http://127.0.0.1:9/ failed"):
        dm.prepare_data()
    assert not list((tmp_path / "nowhere").rglob("*.part"))


def test_debian_copy_when_installed():
    """CI installs Debian's dataset-fashion-mnist and sets ZOO_REQUIRE_DEBIAN_DATA=1, so there
    this test must run; on a machine without the package it has nothing to read."""
    if not DEBIAN_DIR.exists():
        if os.environ.get("ZOO_REQUIRE_DEBIAN_DATA") == "1":
            pytest.fail(f"{DEBIAN_DIR} is missing although ZOO_REQUIRE_DEBIAN_DATA=1")
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    dm = FashionMNIST(data_dir="/nonexistent", download=False, val_size=5000)
    dm.prepare_data()  # verifies the decompressed content against the originals
    dm.setup("fit")
    assert (len(dm._train), len(dm._val), len(dm._test)) == (55000, 5000, 10000)
    counts = torch.bincount(dm._test.tensors[1], minlength=10)
    assert counts.tolist() == [1000] * 10
