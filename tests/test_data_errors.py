"""Data mistakes are errors that name the file, row or argument: a corpus or CSV that is not
UTF-8, a test CSV with a header only, a negative ``val_size``."""

from __future__ import annotations

import pandas as pd
import pytest

from datamodules import FashionMNIST, HousePrices, PennTreebank, TimeMachine
from datamodules.base import split_sizes
from zoo.core.problems import DataError


def test_non_utf8_corpus_names_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "timemachine.txt").write_bytes(b"The Time Machine\n\xff\xfe by Wells\n")
    with pytest.raises(DataError, match=r"timemachine.txt: not UTF-8 text \(byte 0xff at offset 17\)"):
        TimeMachine(data_dir=str(tmp_path), download=False).tokens()
    for split in ("train", "valid", "test"):
        (tmp_path / f"ptb.{split}.txt").write_text(" a b \n")
    (tmp_path / "ptb.valid.txt").write_bytes(b" caf\xe9 \n")
    with pytest.raises(DataError, match="ptb.valid.txt: not UTF-8 text"):
        PennTreebank(data_dir=str(tmp_path), download=False).tokens()


def _house(folder):
    folder.mkdir()
    rows = pd.DataFrame({"Id": [1, 2, 3], "LotArea": [8450, 9600, 11250], "Street": ["Pave", "Grvl", "Pave"]})
    rows.assign(SalePrice=[208500, 181500, 223500]).to_csv(folder / "train.csv", index=False)
    rows.assign(Id=[4, 5, 6]).to_csv(folder / "test.csv", index=False)
    return folder


def test_house_prices_header_only_test_csv_and_non_utf8(tmp_path):
    from competitions.__main__ import main

    data = _house(tmp_path / "house")
    (data / "test.csv").write_text("Id,LotArea,Street\n")
    with pytest.raises(DataError, match=r"test.csv: no rows: only the header \(Id, LotArea, Street"):
        HousePrices(data_dir=str(data)).setup()
    with pytest.raises(DataError, match=r"test.csv: no rows: only the header"):
        main(["house_prices", "prepare", "--data_dir", str(data), "--work_dir", str(tmp_path / "w")])
    (data / "test.csv").write_bytes(b"")
    with pytest.raises(DataError, match="test.csv: empty file"):
        HousePrices(data_dir=str(data)).setup()
    (data / "test.csv").write_bytes(b"Id,LotArea,Street\n4,1,Pav\xe9\n")
    with pytest.raises(DataError, match=r"test.csv: not UTF-8 text \(byte 0xe9"):
        HousePrices(data_dir=str(data)).setup()


def test_negative_val_size_is_reported_as_such(fashion_dir):
    with pytest.raises(ValueError, match=r"val_size=-5 is negative; give a count >= 0 or a fraction"):
        split_sizes(300, -5)
    dm = FashionMNIST(str(fashion_dir), val_size=-0.1, download=False)
    with pytest.raises(ValueError, match="val_size=-0.1 is negative"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="val_size=300 leaves no training examples out of 300"):
        split_sizes(300, 300)
