"""The docs say what the code does, where a line of prose states a checkable fact."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from datamodules.augment import PIPELINES

ROOT = Path(__file__).parents[1]


def test_readme_lists_every_augmentation_name():
    listed = re.search(r"augmentation pipeline \(chosen by name: ([\w, ]+)\)", (ROOT / "README.md").read_text())
    assert listed, "README.md no longer lists the augmentation names"
    assert sorted(listed.group(1).split(", ")) == sorted(PIPELINES)


def test_shipped_competition_recipes_score_last_ckpt_as_the_readme_says():
    readme = " ".join((ROOT / "competitions" / "README.md").read_text().split())
    assert "Every shipped recipe sets `limit_val_batches: 0`" in readme
    for config in sorted((ROOT / "competitions").glob("*/config.yaml")):
        trainer = yaml.safe_load(config.read_text())["fit"]["trainer"]
        assert trainer.get("limit_val_batches") == 0, config
