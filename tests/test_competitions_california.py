"""California house prices end to end on small CSVs in Kaggle's column layout: prepare, 2-fold
fit, predict, checked ``Id,Sold Price`` submission; the column policy (free text dropped, dates
as numbers, list columns as item indicators, capped categories, a mixed column named)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from competitions.__main__ import main
from competitions.kit import DataError
from datamodules.california_house_prices import CaliforniaHousePrices

#: Kaggle's train.csv header (test.csv: the same without "Sold Price")
COLUMNS = ["Id", "Address", "Sold Price", "Summary", "Type", "Year built", "Heating", "Cooling", "Parking", "Lot",
           "Bedrooms", "Bathrooms", "Full bathrooms", "Total interior livable area", "Total spaces", "Garage spaces",
           "Region", "Elementary School", "Elementary School Score", "Elementary School Distance", "Middle School",
           "Middle School Score", "Middle School Distance", "High School", "High School Score", "High School Distance",
           "Flooring", "Heating features", "Cooling features", "Appliances included", "Laundry features",
           "Parking features", "Tax assessed value", "Annual tax amount", "Listed On", "Listed Price", "Last Sold On",
           "Last Sold Price", "City", "Zip", "State"]  # fmt: skip


def write_california_csvs(folder, n_train=60, n_test=20):
    rng = np.random.default_rng(0)
    n = n_train + n_test
    area = rng.uniform(600, 4000, n).round()
    city = rng.choice(["San Jose", "Palo Alto", "Los Angeles", "Fresno"], n)
    factor = pd.Series(city).map({"San Jose": 900, "Palo Alto": 1500, "Los Angeles": 700, "Fresno": 250}).to_numpy()
    price = (factor * area * rng.lognormal(0, 0.1, n)).round()
    appliances = ["Dishwasher", "Dryer", "Garbage disposal", "Microwave", "Range / Oven", "Refrigerator", "Washer"]
    bedrooms = rng.integers(1, 6, n).astype(object)
    bedrooms[[i for i in (3, 17, 41) if i < n]] = "Walk-in Closet, Ground Floor Bedroom"  # the real file's mixed column
    frame = pd.DataFrame({
        "Id": np.arange(n),
        "Address": [f"{100 + i} Main St" for i in range(n)],
        "Summary": [f"Lovely home number {i} with a view, close to schools." for i in range(n)],
        "Type": rng.choice(["SingleFamily", "Condo", "Townhouse"], n),
        "Year built": rng.integers(1920, 2021, n),
        "Heating": rng.choice(["Central", "Forced air", "Central, Gas", None], n),
        "Cooling": rng.choice(["Central Air", "None", None], n),
        "Parking": rng.choice(["Garage, Garage - Attached, Covered", "Driveway", "0 spaces"], n),
        "Lot": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(1000, 20000, n).round()),
        "Bedrooms": bedrooms,
        "Bathrooms": rng.integers(1, 5, n),
        "Full bathrooms": rng.integers(1, 4, n),
        "Total interior livable area": area,
        "Total spaces": rng.integers(0, 4, n),
        "Garage spaces": rng.integers(0, 3, n),
        "Region": city,
        "Elementary School": rng.choice(["Ohlone Elementary", "Hoover Elementary", "Lincoln Elementary"], n),
        "Elementary School Score": rng.integers(1, 11, n),
        "Elementary School Distance": rng.uniform(0.1, 3, n).round(1),
        "Middle School": rng.choice(["Jordan Middle", "Hoover Middle"], n),
        "Middle School Score": rng.integers(1, 11, n),
        "Middle School Distance": rng.uniform(0.1, 5, n).round(1),
        "High School": rng.choice(["Palo Alto High", "Gunn High", None], n),
        "High School Score": rng.integers(1, 11, n),
        "High School Distance": rng.uniform(0.1, 8, n).round(1),
        "Flooring": rng.choice(["Tile, Hardwood", "Carpet", "Laminate, Carpet"], n),
        "Heating features": rng.choice(["Central", "Forced air, Gas", None], n),
        "Cooling features": rng.choice(["Central Air", None], n),
        "Appliances included": [", ".join(rng.choice(appliances, rng.integers(1, 5), replace=False)) for _ in range(n)],
        "Laundry features": rng.choice(["Washer / Dryer, Inside", "In Garage", None], n),
        "Parking features": rng.choice(["Garage, Garage - Attached, Covered", "Driveway"], n),
        "Tax assessed value": (price * rng.uniform(0.5, 0.9, n)).round(),
        "Annual tax amount": (price * 0.012).round(),
        "Listed On": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        "Listed Price": (price * rng.uniform(0.9, 1.1, n)).round(),
        "Last Sold On": np.where(rng.random(n) < 0.3, None, "2015-06-30"),
        "Last Sold Price": np.where(rng.random(n) < 0.3, np.nan, (price * 0.7).round()),
        "City": city,
        "Zip": rng.choice([94022, 94301, 90001, 93650], n),
        "State": "CA",
    })  # fmt: skip
    frame["Listed On"] = frame["Listed On"].dt.strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    train = frame.iloc[:n_train].assign(**{"Sold Price": price[:n_train]})[COLUMNS]
    train.to_csv(folder / "train.csv", index=False)
    frame.iloc[n_train:][[c for c in COLUMNS if c != "Sold Price"]].to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"Id": frame["Id"].iloc[n_train:], "Sold Price": 800000}).to_csv(
        folder / "sample_submission.csv", index=False
    )
    return folder


def test_column_policy_on_the_real_layout(tmp_path):
    data = CaliforniaHousePrices(str(write_california_csvs(tmp_path / "data")))
    with pytest.warns(
        UserWarning, match=r"column 'Bedrooms' mixes numbers and text \(\d of 48 training .*Walk-in Closet"
    ):
        width = data.in_features
    policy = data.preprocess.policy
    assert set(policy["free_text"]) == {"Address", "Summary"}  # dropped, not one-hot encoded
    assert policy["dates"] == ["Listed On", "Last Sold On"] and list(policy["mixed"]) == ["Bedrooms"]
    assert "Appliances included" in policy["lists"] and "refrigerator" in policy["lists"]["Appliances included"]
    assert {"Type", "City", "Zip", "Elementary School"} <= set(policy["categorical"])
    assert width < 150  # one-hot of every text column would give > 300 columns on these 80 rows
    data.setup("fit")
    x, y = data._train.tensors
    assert x.shape[1] == width and torch_finite(x) and torch_finite(y)
    listed = data.preprocess.state["numeric"].index("Listed On")  # a number now: the year
    assert abs(data.preprocess.state["mean"][listed] - 2020.5) < 0.3


def torch_finite(t) -> bool:
    return bool(t.isfinite().all())


def tiny_config(tmp_path):
    cfg = yaml.safe_load(open("competitions/california_house_prices/config.yaml"))
    cfg["cv"]["folds"] = 2
    cfg["fit"]["trainer"].update(max_epochs=20)
    cfg["fit"]["model"]["init_args"].update(lr=1.0)
    cfg["fit"]["data"]["init_args"].update(batch_size=8)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.mark.filterwarnings("ignore:California house prices")
def test_prepare_fit_predict_writes_a_checked_submission(tmp_path):
    data, work = write_california_csvs(tmp_path / "data"), tmp_path / "work"
    config = tiny_config(tmp_path)
    main(["california_house_prices", "prepare", "--data_dir", str(data), "--work_dir", str(work), "--config", config])
    cv = main(["california_house_prices", "fit", "--work_dir", str(work), "--config", config])
    assert len(cv["folds"]) == 2 and np.isfinite(cv["cv_score"]) and np.isfinite(cv["cv_std"])
    sub = pd.read_csv(main(["california_house_prices", "predict", "--work_dir", str(work), "--config", config]))
    assert list(sub.columns) == ["Id", "Sold Price"]
    assert sub["Id"].tolist() == pd.read_csv(data / "test.csv")["Id"].tolist()
    assert sub["Sold Price"].between(1e4, 1e8).all()


def test_bad_prices_and_missing_columns_are_named(tmp_path):
    data = write_california_csvs(tmp_path / "data", n_train=10, n_test=4)
    train, test = pd.read_csv(data / "train.csv"), pd.read_csv(data / "test.csv")
    train.loc[4, "Sold Price"] = 0
    train.to_csv(data / "train.csv", index=False)
    test.drop(columns=["Listed On"]).to_csv(data / "test.csv", index=False)
    with pytest.raises(DataError) as e:
        main(["california_house_prices", "prepare", "--data_dir", str(data), "--work_dir", str(tmp_path / "w")])
    assert "train.csv: Sold Price not a positive number, rows with Id: 4" in str(e.value)
    assert "test.csv: missing column (present in train.csv): Listed On" in str(e.value)
