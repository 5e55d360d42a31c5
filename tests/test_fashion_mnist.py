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
    kw.setdefault("val_size", 50)
    dm = FashionMNIST(data_dir=str(folder), batch_size=32, **kw)
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


def test_normalize_standardises_with_the_training_set_constants(fashion_dir):
    """Pixels p in [0, 255] become (p / 255 - 0.2860) / 0.3530, Fashion-MNIST's training mean and
    std; on images whose raw statistics are those constants, the result has mean 0 and std 1."""
    rng = np.random.default_rng(1)
    # black background and one grey level v on a share q of the pixels, as in clothes images:
    # mean q v and std v sqrt(q (1 - q)) are 0.2860 and 0.3530 (of 255) for these q and v
    q = 0.2860**2 / (0.2860**2 + 0.3530**2)
    v = round(0.2860 * 255 / q)
    for prefix, n in (("train", 300), ("t10k", 100)):
        raw = np.zeros(n * 28 * 28, np.uint8)
        raw[: round(q * raw.size)] = v
        write_idx(fashion_dir / f"{prefix}-images-idx3-ubyte.gz", rng.permutation(raw).reshape(n, 28, 28))
    dm = _dm(fashion_dir, normalize=True, val_size=0)
    x, _ = dm._test.__getitems__(list(range(100)))
    pixels = read_idx(fashion_dir / "t10k-images-idx3-ubyte.gz").float().unsqueeze(1)
    torch.testing.assert_close(x, (pixels / 255 - 0.2860) / 0.3530)
    assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02
    plain, _ = _dm(fashion_dir, val_size=0)._test.__getitems__(list(range(100)))
    torch.testing.assert_close(plain, pixels / 255)  # without normalize: only scaled


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


def test_label_outside_the_classes_names_the_file_and_value(fashion_dir):
    labels = read_idx(fashion_dir / "train-labels-idx1-ubyte.gz").numpy().copy()
    labels[7] = 12
    write_idx(fashion_dir / "train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(IDXError, match=r"train-labels-idx1-ubyte.gz: label 12 at item 7 is outside 0-9"):
        _dm(fashion_dir)


def _fake_debian(tmp_path, monkeypatch, fashion_dir) -> Path:
    """A copy of the fixture standing in for Debian's package, with its content digests."""
    import hashlib

    import datamodules.fashion_mnist as fm

    system = tmp_path / "debian"
    system.mkdir()
    for f in fashion_dir.glob("*.gz"):
        (system / f.name).write_bytes(f.read_bytes())
    digests = {stem: hashlib.sha256(gzip.decompress((system / (stem + ".gz")).read_bytes())).hexdigest()
               for stem in fm.CONTENT_SHA256}  # fmt: skip
    monkeypatch.setattr(fm, "DEBIAN_DIR", system)
    monkeypatch.setattr(fm, "CONTENT_SHA256", digests)
    return system


def test_system_copy_is_used_and_said_when_data_dir_holds_none(tmp_path, monkeypatch, fashion_dir, capsys):
    system = _fake_debian(tmp_path, monkeypatch, fashion_dir)
    dm = _dm(tmp_path / "empty")
    assert len(dm._test) == 100
    said = f"Fashion-MNIST: reading {system} (the system-wide copy: none in {tmp_path / 'empty'})"
    assert said in capsys.readouterr().err
    # the copy is checked on the bytes read: a changed file is refused
    write_idx(system / "t10k-labels-idx1-ubyte.gz", np.zeros(100, np.uint8))
    with pytest.raises(IDXError, match="t10k-labels-idx1-ubyte.gz: content differs from the original"):
        _dm(tmp_path / "empty")


def test_part_of_the_set_or_a_file_is_refused_not_replaced_by_the_system_copy(tmp_path, monkeypatch, fashion_dir):
    _fake_debian(tmp_path, monkeypatch, fashion_dir)
    (fashion_dir / "t10k-labels-idx1-ubyte.gz").unlink()  # 3 of the 4 files
    missing = "missing t10k-labels-idx1-ubyte.gz"
    with pytest.raises(FileNotFoundError, match=rf"{fashion_dir} holds only part of the data set: {missing}"):
        _dm(fashion_dir)
    a_file = tmp_path / "data.txt"
    a_file.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=f"data_dir {a_file} is a file"):
        _dm(a_file)


def test_setup_never_downloads(tmp_path, monkeypatch):
    """Only prepare_data (rank 0 under DDP) may fetch; setup on every rank only reads."""
    import datamodules.fashion_mnist as fm

    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(fm, "download", lambda *a, **k: pytest.fail("setup downloaded"))
    with pytest.raises(FileNotFoundError, match=r"not downloaded yet: prepare_data\(\) fetches them"):
        FashionMNIST(data_dir=str(tmp_path / "nowhere"), download=True).setup("fit")


def test_download_over_http_is_checked_and_read(tmp_path, monkeypatch, fashion_dir, capsys):
    """The real download path: the four .gz files served on loopback, md5-checked, renamed."""
    import hashlib
    import http.server
    import threading
    from functools import partial

    import datamodules.fashion_mnist as fm

    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(fashion_dir))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        md5 = {stem: hashlib.md5((fashion_dir / (stem + ".gz")).read_bytes()).hexdigest() for stem in fm.GZ_MD5}
        monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
        monkeypatch.setattr(fm, "MIRROR", url)
        monkeypatch.setattr(fm, "GZ_MD5", md5)
        dm = FashionMNIST(data_dir=str(tmp_path / "data"), val_size=50)
        dm.prepare_data()
        dm.setup("fit")
        assert len(dm._test) == 100 and f"(downloaded from {url})" in capsys.readouterr().err
        raw = tmp_path / "data" / "FashionMNIST" / "raw"
        assert sorted(p.name for p in raw.iterdir()) == sorted(stem + ".gz" for stem in md5)
        monkeypatch.setattr(fm, "GZ_MD5", {stem: "0" * 32 for stem in md5})
        with pytest.raises(FileNotFoundError, match="checksum mismatch"):
            FashionMNIST(data_dir=str(tmp_path / "other")).prepare_data()
        assert not list((tmp_path / "other").rglob("*.gz*"))
    finally:
        httpd.shutdown()


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
