"""Hostile and degenerate inputs to the commands and data modules: class paths a recipe names,
files that are no checkpoint, images that declare more pixels than a machine holds, corpora
with nothing to learn from, options outside their range. Each is one line naming the file or
the option, before anything is decoded, built or written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from zoo.core.classes import ConfigError, resolve_class
from zoo.run.errors import run_command
from zoo.show_augment import main as show_augment

ROOT = Path(__file__).parents[1]


def one_line(command, argv: list[str]) -> str:
    """The message ``command`` exits with through the shared boundary; it must be one line."""
    with pytest.raises(SystemExit) as exit_:
        run_command(lambda: command(argv))
    message = str(exit_.value)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


# -- class paths ------------------------------------------------------------------------------
def test_show_augment_builds_only_a_data_module(tmp_path):
    marker = tmp_path / "ran"
    config = tmp_path / "config.yaml"
    config.write_text(f"data:\n  class_path: subprocess.Popen\n  init_args: {{args: [touch, {marker}]}}\n")
    message = one_line(show_augment, ["--config", str(config), "--out", str(tmp_path / "a.png")])
    assert message.startswith(f"error: {config}: data.class_path is subprocess.Popen, not a ZooDataModule")
    config.write_text("data:\n  class_path: datamodules.NoSuchSet\n")
    message = one_line(show_augment, ["--config", str(config)])
    assert "data.class_path is datamodules.NoSuchSet, a class this zoo does not have" in message
    config.write_text("data:\n  class_path: datamodules.FashionMNIST\n  init_args: {colour: true}\n")
    message = one_line(show_augment, ["--config", str(config)])
    assert message.startswith(f"error: {config}: data.init_args: got an unexpected keyword argument 'colour'")
    assert not marker.exists() and not (tmp_path / "a.png").exists()


def test_a_checkpoints_class_is_imported_only_from_the_zoo(tmp_path):
    before = set(sys.modules)
    with pytest.raises(ConfigError, match="outside the zoo's packages"):
        resolve_class("antigravity.Fly", object, "x.ckpt: its task", zoo_only=True)
    assert "antigravity" not in set(sys.modules) - before  # refused before importing it
    with pytest.raises(ConfigError, match="not a Module"):
        resolve_class("zoo.core.classes.ConfigError", torch.nn.Module, "x.ckpt: its task", zoo_only=True)
