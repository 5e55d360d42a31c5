"""Getting a competition's raw files: from Kaggle when credentials exist, else instructions.

Kaggle's files can only be downloaded by an account that accepted the competition's rules, so
without credentials (or offline) the user is told which files to place where.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from datamodules.download import extract


def kaggle_credentials() -> bool:
    """Whether the ``kaggle`` client would find credentials (environment or ``kaggle.json``)."""
    if os.environ.get("KAGGLE_API_TOKEN") or (os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")):
        return True
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (config_dir / "kaggle.json").is_file()


def how_to_get(slug: str, data_dir: Path, missing: Sequence[str]) -> str:
    url = f"https://www.kaggle.com/competitions/{slug}"
    return (
        f"missing in {data_dir}: {', '.join(missing)}. Either download the data from {url}/data and "
        f"unpack it so that {data_dir}/{missing[0]} exists, or `pip install kaggle`, put your API "
        "token in ~/.kaggle/kaggle.json (or set KAGGLE_USERNAME and KAGGLE_KEY), accept the rules "
        f"at {url}/rules, and run prepare again to download it."
    )


def fetch(slug: str, data_dir: str | Path, missing: Sequence[str]) -> None:
    """Download and unpack competition ``slug`` into ``data_dir``; without credentials or the
    ``kaggle`` package, raise ``FileNotFoundError`` saying which files to place where."""
    data_dir = Path(data_dir)
    if not kaggle_credentials():
        raise FileNotFoundError(how_to_get(slug, data_dir, missing) + " (no Kaggle credentials found)")
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError as e:
        raise FileNotFoundError(how_to_get(slug, data_dir, missing) + " (the kaggle package is not installed)") from e
    api = KaggleApi()
    api.authenticate()
    data_dir.mkdir(parents=True, exist_ok=True)
    api.competition_download_files(slug, path=str(data_dir), quiet=False)
    archive = data_dir / f"{slug}.zip"
    extract(archive, data_dir)  # refuses members that point outside data_dir
    archive.unlink()
