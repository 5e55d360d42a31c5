"""CIFAR-10: the pickled batches and the Kaggle folders, written here in their real formats and
read back through the real parsers; the seeded split; download and the offline error."""

from __future__ import annotations

import csv
import hashlib
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules import cifar10 as cifar
from datamodules.cifar10 import CIFAR10, CIFARFormatError, read_batch

RNG = np.random.default_rng(0)


def _images(n: int) -> np.ndarray:
    return RNG.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _write_batch(path: Path, images: np.ndarray, labels: list[int]) -> None:
    # the original layout: rows of 3072 bytes, the red plane, then green, then blue
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    d = {
        "batch_label": "training batch",
        "labels": labels,
        "data": rows,
        "filenames": [f"{i}.png" for i in labels],
    }
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)


def _write_pickles(root: Path, per_batch: int = 2, n_test: int = 3) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = _images(5 * per_batch)
    for b in range(5):
        part = slice(b * per_batch, (b + 1) * per_batch)
        _write_batch(folder / f"data_batch_{b + 1}", train[part], [(b + i) % 10 for i in range(per_batch)])
    test = _images(n_test)
    _write_batch(folder / "test_batch", test, list(range(n_test)))
    return train, test


def _raw(dm: CIFAR10, split: str) -> torch.Tensor:
    """Images of a split back in uint8 (the module built with augment none, no normalisation)."""
    ds = getattr(dm, f"_{split}")
    return torch.stack([(ds[i][0] * 255).round().to(torch.uint8) for i in range(len(ds))])


def test_read_batch_pixel_layout(tmp_path) -> None:
    train, _ = _write_pickles(tmp_path)
    images, labels = read_batch(tmp_path / "cifar-10-batches-py" / "data_batch_2")
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    assert np.array_equal(images, train[2:4]) and labels.tolist() == [1, 2]


def test_pickle_module_splits_and_reads_exact_pixels(tmp_path) -> None:
    train, test = _write_pickles(tmp_path)
    dm = CIFAR10(
        str(tmp_path), batch_size=4, augment="none", normalize=False, val_size=3, seed=1, download=False
    )
    dm.setup("fit")
    assert (len(dm._train), len(dm._val), len(dm._test)) == (7, 3, 3)
    assert torch.equal(_raw(dm, "test"), torch.from_numpy(test).permute(0, 3, 1, 2))
    seen = torch.cat([_raw(dm, "train"), _raw(dm, "val")])
    expected = torch.from_numpy(train).permute(0, 3, 1, 2)
    assert sorted(map(bytes, seen.flatten(1).numpy())) == sorted(map(bytes, expected.flatten(1).numpy()))
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and y.dtype == torch.int64


def test_split_depends_on_seed_only(tmp_path) -> None:
    _write_pickles(tmp_path, per_batch=4)

    def val_labels(seed: int) -> list:
        dm = CIFAR10(str(tmp_path), augment="none", val_size=6, seed=seed, download=False)
        dm.setup("fit")
        return [x.sum().item() for x, _ in (dm._val[i] for i in range(6))]

    assert val_labels(0) == val_labels(0)
    assert val_labels(0) != val_labels(1)


def test_bad_batch_names_the_file(tmp_path) -> None:
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, f)
    with pytest.raises(CIFARFormatError, match=r"data_batch_1: 'data' is uint8 \(2, 100\)"):
        read_batch(path)
    _write_batch(path, _images(2), [0, 10])
    with pytest.raises(CIFARFormatError, match="labels outside 0..9"):
        read_batch(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(CIFARFormatError, match="not a readable CIFAR pickle"):
        read_batch(path)


def _py2_batch(path: Path, images: np.ndarray, labels: list[int]) -> None:
    """A batch exactly as Python 2's cPickle wrote CIFAR's (protocol 2): ``str`` keys and the
    pixel bytes as BINSTRING opcodes, numpy's ``numpy.core.multiarray._reconstruct``."""

    def s(text: str | bytes) -> bytes:  # a Python 2 str
        raw = text.encode("latin1") if isinstance(text, str) else text
        return (b"U" + bytes([len(raw)]) if len(raw) < 256 else b"T" + struct.pack("<I", len(raw))) + raw

    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    minus1 = b"J" + struct.pack("<i", -1)
    dtype = b"cnumpy\ndtype\n" + s("u1") + b"K\x00K\x01\x87R(K\x03" + s("|") + b"NNN" + minus1 * 2 + b"K\x00tb"
    shape = b"J" + struct.pack("<i", len(rows)) + b"M\x00\x0c\x86"  # (N, 3072)
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s("b") + b"\x87R"
             + b"(K\x01" + shape + dtype + b"\x89" + s(rows.tobytes()) + b"tb")  # fmt: skip
    label_list = b"](" + b"".join(b"K" + bytes([y]) for y in labels) + b"e"
    path.write_bytes(b"\x80\x02}(" + s("data") + array + s("labels") + label_list + s("batch_label") + s("x") + b"u.")


def test_python2_batch_in_the_real_format_loads(tmp_path) -> None:
    images = _images(3)
    _py2_batch(tmp_path / "data_batch_1", images, [9, 0, 4])
    got, labels = read_batch(tmp_path / "data_batch_1")
    assert np.array_equal(got, images) and labels.tolist() == [9, 0, 4]
    # and as Python 3 writes protocol 2: bytes keys, the bytes through _codecs.encode
    rows = images.transpose(0, 3, 1, 2).reshape(3, -1)
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": rows, b"labels": [1, 2, 3], b"batch_label": b"x"}, f, protocol=2)
    got, labels = read_batch(tmp_path / "data_batch_2")
    assert np.array_equal(got, images) and labels.tolist() == [1, 2, 3]


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))  # runs if the unpickler builds it


@pytest.mark.parametrize("protocol", [2, 5])
def test_a_crafted_batch_cannot_run_code(tmp_path, protocol) -> None:
    marker = tmp_path / "pwned"
    folder = tmp_path / "cifar-10-batches-py"
    _write_pickles(tmp_path)
    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump({b"data": _Payload(marker), b"labels": [0]}, f, protocol=protocol)
    with pytest.raises(CIFARFormatError, match=r"data_batch_3: .*refused to load posix.mkdir") as e:
        CIFAR10(str(tmp_path), download=False, val_size=1).setup("fit")
    assert not marker.exists() and "\n" not in str(e.value)
    with open(folder / "data_batch_3", "wb") as f:  # a codec other than latin-1 is refused too
        f.write(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x06\x00\x00\x00base64\x86R.")
    with pytest.raises(CIFARFormatError, match="data_batch_3: .*refused codec 'base64'"):
        read_batch(folder / "data_batch_3")


def test_label_outside_the_classes_names_file_and_value(tmp_path) -> None:
    _py2_batch(tmp_path / "test_batch", _images(3), [1, 12, 3])
    with pytest.raises(CIFARFormatError, match=r"test_batch: labels outside 0..9: 12 at item 1"):
        read_batch(tmp_path / "test_batch")


def test_part_of_the_batches_is_refused_naming_the_missing(tmp_path) -> None:
    _write_pickles(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py holds only part .*missing data_batch_4"):
        CIFAR10(str(tmp_path), val_size=1).prepare_data()  # not downloaded over it either


def test_non_utf8_labels_csv_names_the_file(tmp_path) -> None:
    _write_kaggle(tmp_path, [1, 2], "png", range(1, 3), test_ids=None)
    (tmp_path / "trainLabels.csv").write_bytes(b"id,label\n1,cat\n2,d\xe9er\n")
    with pytest.raises(ValueError, match=r"trainLabels.csv: not UTF-8 text \(byte 0xe9 at offset 18\)"):
        CIFAR10(str(tmp_path), val_size=1, download=False).setup("fit")


def _write_kaggle(root: Path, ids: list[int], ext: str, csv_ids: range, test_ids: list[int] | None) -> None:
    (root / "train").mkdir(parents=True)
    classes = {i: cifar.CLASSES[i % 10] for i in csv_ids}
    for i in ids:
        Image.fromarray(np.full((32, 32, 3), i, np.uint8)).save(root / "train" / f"{i}.{ext}")
    with open(root / "trainLabels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label"])
        w.writerows([i, c] for i, c in classes.items())
    if test_ids:
        (root / "test").mkdir()
        for i in test_ids:
            Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(root / "test" / f"{i}.{ext}")
        (root / "testLabels.csv").write_text(
            "id,label\n" + "".join(f"{i},{cifar.CLASSES[i % 10]}\n" for i in test_ids)
        )


@pytest.mark.parametrize("cache", [True, False])
def test_kaggle_layout_labels_only_the_files_present(tmp_path, cache: bool) -> None:
    # like d2l's tiny copy: the CSV lists many more ids than there are images; ids have gaps
    _write_kaggle(tmp_path, [1, 3, 10, 12], "png", range(1, 50), test_ids=[1, 2, 3])
    dm = CIFAR10(str(tmp_path), augment="none", normalize=False, val_size=0, cache=cache, download=False)
    dm.setup("fit")
    assert dm._train.labels == [1, 3, 0, 2]  # numeric order: 10 after 3
    assert _raw(dm, "train")[:, 0, 0, 0].tolist() == [1, 3, 10, 12]
    assert dm._test.labels == [1, 2, 3] and dm._val is dm._test


def test_kaggle_jpeg_without_test_labels_tests_on_validation(tmp_path) -> None:
    _write_kaggle(tmp_path, list(range(1, 11)), "jpg", range(1, 11), test_ids=None)
    dm = CIFAR10(str(tmp_path), augment="cifar", val_size=2, download=False)
    with pytest.warns(UserWarning, match="no testLabels.csv"):
        dm.setup("fit")
    assert len(dm._train) == 8 and dm._test is dm._val
    x, _ = dm._train[0]
    assert x.shape == (3, 32, 32)


def test_kaggle_bad_csv_names_row(tmp_path) -> None:
    _write_kaggle(tmp_path, [1, 2], "png", range(1, 3), test_ids=None)
    with open(tmp_path / "trainLabels.csv", "a") as f:
        f.write("3,spaceship\n")
    with pytest.raises(CIFARFormatError, match=r"trainLabels.csv, line 4: \['3', 'spaceship'\]"):
        CIFAR10(str(tmp_path), val_size=1, download=False).setup("fit")
    (tmp_path / "trainLabels.csv").write_text("id,label\n1,cat\n")
    with pytest.raises(CIFARFormatError, match=r"no row for 1 images .*\['2.png'\]"):
        CIFAR10(str(tmp_path), val_size=1, download=False).setup("fit")


def test_download_verifies_and_unpacks(tmp_path, monkeypatch) -> None:
    src = tmp_path / "src"
    _write_pickles(src)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setattr(cifar, "URL", archive.as_uri())
    monkeypatch.setattr(cifar, "MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    dm = CIFAR10(str(tmp_path / "data"), val_size=2)
    dm.prepare_data()
    assert (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").is_file()
    dm.setup("fit")
    assert len(dm._train) == 8
    monkeypatch.setattr(cifar, "MD5", "0" * 32)  # a corrupted download is refused
    with pytest.raises(FileNotFoundError, match="checksum mismatch"):
        CIFAR10(str(tmp_path / "other")).prepare_data()


def test_offline_error_says_where_and_how(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cifar, "URL", (tmp_path / "nowhere.tar.gz").as_uri())
    need = r"need data_batch_1, .*, test_batch \(or trainLabels.csv, train/\) in one of: "
    with pytest.raises(FileNotFoundError, match=rf"CIFAR-10 not found: {need}.*download from .* failed.*data_dir"):
        CIFAR10(str(tmp_path)).prepare_data()
    # setup never downloads (in DDP only rank 0 runs prepare_data): it says so
    with pytest.raises(FileNotFoundError, match=rf"CIFAR-10 not found: {need}.*prepare_data\(\) fetches"):
        CIFAR10(str(tmp_path)).setup("fit")
    with pytest.raises(FileNotFoundError, match="download=False"):
        CIFAR10(str(tmp_path), download=False).prepare_data()


def test_unknown_augmentation_fails_early() -> None:
    with pytest.raises(ValueError, match="unknown augmentation 'flip2'"):
        CIFAR10(augment="flip2")


def test_recipe_runs_one_batch(tmp_path) -> None:
    from zoo.cli.fit import main

    _write_pickles(tmp_path / "data", per_batch=4)
    summary = main([
        "--config", "configs/resnet18_cifar10.yaml",
        "--data.init_args.data_dir", str(tmp_path / "data"), "--data.init_args.val_size", "4",
        "--data.init_args.batch_size", "4", "--model.init_args.arch_kwargs", "{stem: cifar, width: 4}",
        "--trainer.fast_dev_run", "1", "--trainer.default_root_dir", str(tmp_path / "runs"),
    ])  # fmt: skip
    assert 0.0 <= summary["test"]["test/acc"] <= 1.0
