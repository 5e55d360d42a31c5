"""NASA's airfoil self-noise measurements, as the course's optimisation chapter uses them (lecture 72).

``airfoil_self_noise.dat``: 1,503 rows of 6 tab-separated numbers (frequency, angle of attack,
chord length, free-stream velocity, suction-side displacement thickness; sound pressure in dB),
no header. As ``d2l.get_data_ch11`` does, every column (the target too) is standardised with the
mean and population standard deviation of all 1,503 rows, and the first 1,500 rows are kept.

The course trains and reports its loss on the same 1,500 rows (it studies optimisation, not
generalisation), so validation and test are those rows too: ``val/loss`` after the last epoch is
the number the course prints.
"""

from __future__ import annotations

from pathlib import Path

import torch

from datamodules.base import TensorDataset, ZooDataModule, read_text
from datamodules.download import download, find_data
from zoo.core.errors import ConfigError
from zoo.core.problems import Problems

SHARED = Path("../shared/data")  # the project's offline copies, relative to the repository root
COLUMNS = 6


def read_airfoil(path: str | Path) -> torch.Tensor:
    """The rows of ``path`` as a ``(N, 6)`` float32 tensor; every malformed line is named."""
    problems, rows = Problems(), []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            values = [float(f) for f in fields]
        except ValueError:
            problems.add(f"line {number}: expected {COLUMNS} tab-separated numbers, got {line.strip()[:60]!r}")
            continue
        if len(values) != COLUMNS:
            problems.add(f"line {number}: expected {COLUMNS} tab-separated numbers, got {len(values)}")
            continue
        rows.append(values)
    if not rows and not problems.items:
        problems.add(f"no rows; expected lines of {COLUMNS} tab-separated numbers")
    problems.raise_if_any(str(path))
    return torch.tensor(rows, dtype=torch.float32)


class Airfoil(ZooDataModule):
    """The course's airfoil regression: 5 standardised features -> the standardised sound pressure.

    Args:
        data_dir: folder holding ``airfoil_self_noise.dat`` (or an ``airfoil/`` folder with it).
        num_rows: rows kept after standardising (the course: the first 1,500).
        batch_size: the course: 10.
        download: fetch the file (checksummed) into ``data_dir/airfoil`` when it is nowhere else.
    """

    FILE = "airfoil_self_noise.dat"
    URL = "http://d2l-data.s3-accelerate.amazonaws.com/" + FILE  # the course's DATA_HUB copy
    SHA256 = "74c75fd71783f1e6b71f8a622b993dc592897a97cd689c5090a07147a1b097b3"

    def __init__(self, data_dir: str = "data", num_rows: int = 1500, batch_size: int = 10,
                 download: bool = True, num_workers: int = 0) -> None:  # fmt: skip
        super().__init__(batch_size, num_workers)
        if num_rows < 1:
            raise ConfigError(f"num_rows must be >= 1, got {num_rows}")
        self.data_dir, self.num_rows, self.download = Path(data_dir).expanduser(), num_rows, download
        self.in_features = COLUMNS - 1

    def path(self) -> Path:
        d, target = self.data_dir, self.data_dir / "airfoil"
        found = find_data(
            "Airfoil", [(d, {"table": (self.FILE,)}), (target, {"table": (self.FILE,)})],
            system=[(SHARED / "airfoil", {"table": (self.FILE,)})],
            fetch=(lambda: download(self.URL, target / self.FILE, sha256=self.SHA256)) if self.download else None,
            source=self.URL, no_fetch="download=False",
            how="Put airfoil_self_noise.dat there or pass --data.init_args.data_dir.",
        )  # fmt: skip
        return found.paths["table"]

    def prepare_data(self) -> None:
        self.path()

    def setup(self, stage: str | None = None) -> None:
        path = self.path()
        data = read_airfoil(path)
        if len(data) < self.num_rows:
            raise ConfigError(f"{path}: {len(data)} rows, fewer than num_rows={self.num_rows}")
        std = data.std(dim=0, unbiased=False)
        if (std == 0).any():
            column = int((std == 0).nonzero()[0]) + 1
            raise ConfigError(f"{path}: column {column} is constant and cannot be standardised")
        data = ((data - data.mean(dim=0)) / std)[: self.num_rows]
        rows = TensorDataset(data[:, :-1], data[:, -1:])
        self._train = self._val = self._test = rows
