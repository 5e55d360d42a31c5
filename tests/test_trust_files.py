"""Files the zoo writes through ``zoo.core.io.atomic_write`` (submissions, checkpoints, configs,
metrics) get the permissions a plain ``open()`` gives them, under the umask, and are still
replaced atomically; a folder given as the file is refused before anything is written."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from zoo.core.io import atomic_write


@pytest.fixture
def umask():
    """Sets the process umask for one test and puts the old one back."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_get_0666_less_the_umask(tmp_path, umask, mask):
    umask(mask)
    text, binary = tmp_path / "submission.csv", tmp_path / "last.ckpt"
    with atomic_write(text, newline="") as f:
        f.write("id,label\n1,cat\n")
    with atomic_write(binary, "wb") as f:
        torch.save({"w": torch.ones(2)}, f)
    for path in (text, binary):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, oct(path.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "submission.csv"]


def test_a_replaced_file_takes_the_umask_and_a_failed_write_keeps_the_old_one(tmp_path, umask):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    path.chmod(0o600)  # e.g. written by an older zoo
    with atomic_write(path) as f:
        f.write("new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o644
    with pytest.raises(RuntimeError, match="fails while writing"):
        with atomic_write(path) as f:
            f.write("half")
            raise RuntimeError("the process fails while writing")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_folder_is_not_a_file_name(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder; expected a file name"):
        with atomic_write(tmp_path) as f:
            f.write("never")
    assert list(tmp_path.iterdir()) == []
