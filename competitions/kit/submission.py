"""``submission.csv``: checked against the sample submission, then written atomically.

The check runs on the table before anything is written, and the file is replaced through
``zoo.run.io.atomic_write``: a bad table or an interrupted write leaves the previous submission as
it was. Where a competition ships no sample (the course's copies of house prices and CIFAR-10
do not), the expected header comes from the competition and the ids from its test files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from datamodules.problems import Problems
from zoo.run.io import atomic_write


def read_sample(path: str | Path) -> tuple[list[str], list[str]]:
    """The header and the ids (first column, as text) of a sample submission."""
    sample = pd.read_csv(path, dtype=str, keep_default_na=False)
    return list(sample.columns), sample.iloc[:, 0].tolist()


def check_submission(table: pd.DataFrame, header: Sequence[str], ids: Sequence[str], where: str) -> None:
    """Raise a ``DataError`` unless ``table`` has exactly ``header``, the ``ids`` in the same
    order in its first column, and no missing value."""
    problems = Problems()
    if list(table.columns) != list(header):
        got, want = list(table.columns), list(header)
        diff = [c for c in want if c not in got][:5], [c for c in got if c not in want][:5]
        problems.add(f"header differs from the expected {len(want)} columns "
                     f"(missing {diff[0]}, unexpected {diff[1]}, or another order)")  # fmt: skip
    got_ids = table.iloc[:, 0].astype(str).tolist() if len(table.columns) else []
    if got_ids != [str(i) for i in ids]:
        want_set, got_set = {str(i) for i in ids}, set(got_ids)
        problems.add_each("ids missing", [i for i in ids if str(i) not in got_set])
        problems.add_each("ids not in the test set", [i for i in got_ids if i not in want_set])
        if want_set == got_set:
            dup = len(got_ids) - len(got_set)
            problems.add(f"{dup} duplicate id(s)" if dup else "the ids are in another order than the test set's")
    nan_rows = table.index[table.isna().any(axis=1)]
    problems.add_each("rows with a missing value (id)", table.iloc[nan_rows, 0].tolist() if len(nan_rows) else [])
    problems.raise_if_any(where)


def write_submission(table: pd.DataFrame, path: str | Path, header: Sequence[str], ids: Sequence[str]) -> Path:
    """Check ``table`` and only then replace ``path`` with it, atomically."""
    path = Path(path)
    check_submission(table, header, ids, f"the submission for {path}")
    with atomic_write(path, newline="") as f:
        table.to_csv(f, index=False)
    return path
