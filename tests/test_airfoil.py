"""datamodules.Airfoil on small files in the real format (tab-separated, CRLF, no header)."""

import pytest
import torch

from datamodules import Airfoil
from zoo.core.problems import DataError


def _write(folder, rows, name="airfoil_self_noise.dat"):
    folder.mkdir(parents=True, exist_ok=True)
    text = "\r\n".join("\t".join(str(v) for v in r) for r in rows) + "\r\n"
    (folder / name).write_text(text, newline="")
    return folder


def _rows(n):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 6, generator=g) * torch.tensor([5000, 20, 0.3, 70, 0.05, 130])).tolist()


def test_standardised_on_all_rows_then_the_first_kept(tmp_path):
    rows = _rows(23)
    d = Airfoil(data_dir=str(_write(tmp_path / "airfoil", rows).parent), num_rows=20, download=False)
    d.setup()
    x, y = d._train.tensors
    assert x.shape == (20, 5) and y.shape == (20, 1) and d.in_features == 5
    full = torch.tensor(rows)
    expected = (full - full.mean(0)) / full.std(0, unbiased=False)  # numpy's std, as the course
    torch.testing.assert_close(torch.cat([x, y], 1), expected[:20])
    assert d._val is d._train and d._test is d._train  # the course evaluates on its training rows
    batch = next(iter(d.train_dataloader()))
    assert batch[0].shape == (10, 5)


def test_bad_lines_are_named(tmp_path):
    folder = _write(tmp_path, [[1, 2, 3, 4, 5, 6]] * 3)
    with open(folder / "airfoil_self_noise.dat", "a") as f:
        f.write("1\t2\t3\r\nx\t2\t3\t4\t5\t6\r\n")
    with pytest.raises(DataError) as e:
        Airfoil(data_dir=str(folder), download=False).setup()
    assert "line 4: expected 6 tab-separated numbers, got 3" in str(e.value)
    assert "line 5: expected 6 tab-separated numbers, got 'x" in str(e.value)


def test_too_few_rows_and_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ../shared/data copy to fall back on
    folder = _write(tmp_path, _rows(5))
    with pytest.raises(ValueError, match="5 rows, fewer than num_rows=1500"):
        Airfoil(data_dir=str(folder), download=False).setup()
    with pytest.raises(FileNotFoundError, match="airfoil_self_noise.dat"):
        Airfoil(data_dir=str(tmp_path / "empty"), download=False).path()
