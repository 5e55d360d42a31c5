"""``submission.csv``: checked against the sample submission, then written atomically.

The check runs on the table before anything is written, and the file is replaced through
``zoo.core.io.atomic_write``: a bad table or an interrupted write leaves the previous submission as
it was. Where a competition ships no sample (the course's copies of house prices and CIFAR-10
do not), the expected header comes from the competition and the ids from its test files.
Detection competitions submit a zipped JSON list of boxes instead (``write_detections``),
checked and replaced the same way.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from zoo.core.io import atomic_write
from zoo.core.problems import Problems


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


# -- detection submissions: a JSON list of boxes, zipped ----------------------------------------
DETECTION_KEYS = ("image_id", "category_id", "bbox", "score")


def check_detections(records: Sequence[dict], image_ids: Sequence[int], category_ids: Sequence[int],
                     where: str) -> None:  # fmt: skip
    """Raise a ``DataError`` unless every record is ``{image_id, category_id, bbox: [x, y, w, h],
    score}`` with an image id of ``image_ids`` (compared as exact ints: 64-bit ids stay whole), a
    category of ``category_ids``, a box of positive size and a score in [0, 1]. An image without
    any record is fine (nothing detected)."""
    ids, cats = {int(i) for i in image_ids}, {int(c) for c in category_ids}
    keys, image, category, bbox, score = [], [], [], [], []
    for n, r in enumerate(records):
        if not isinstance(r, dict) or set(r) != set(DETECTION_KEYS):
            keys.append(n)
            continue
        if type(r["image_id"]) is not int or r["image_id"] not in ids:
            image.append(f"{n} ({r['image_id']!r})")
        if type(r["category_id"]) is not int or r["category_id"] not in cats:
            category.append(f"{n} ({r['category_id']!r})")
        b = r["bbox"]
        if not (isinstance(b, list) and len(b) == 4 and all(_finite_number(v) for v in b) and b[2] > 0 and b[3] > 0):
            bbox.append(f"{n} ({b!r})")
        if not (_finite_number(r["score"]) and 0 <= r["score"] <= 1):
            score.append(f"{n} ({r['score']!r})")
    problems = Problems()
    problems.add_each(f"records without exactly the keys {', '.join(DETECTION_KEYS)}", keys)
    problems.add_each("records whose image_id is not a test image", image)
    problems.add_each(f"records whose category_id is not one of {sorted(cats)}", category)
    problems.add_each("records whose bbox is not [x, y, w, h] with w, h > 0", bbox)
    problems.add_each("records whose score is not in [0, 1]", score)
    problems.raise_if_any(where)


def _finite_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def write_detections(records: Sequence[dict], path: str | Path, image_ids: Sequence[int],
                     category_ids: Sequence[int], member: str = "answer.json") -> Path:  # fmt: skip
    """Check ``records`` and only then replace ``path`` with a zip holding them as ``member`` (a
    JSON list), atomically. Python's json writes ints of any size exactly."""
    path = Path(path)
    check_detections(records, image_ids, category_ids, f"the submission for {path}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, json.dumps(list(records)))
    with atomic_write(path, "wb") as f:
        f.write(buffer.getvalue())
    return path
