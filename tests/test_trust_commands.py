"""Hostile and broken inputs to every command other than zoo.fit: a checkpoint whose pickle
would run code, a file that is no checkpoint, a truncated one, another model's; a config that
is not UTF-8 or not YAML; empty, binary or header-only CSVs; a fold that does not exist; an
output path that is a folder. Each is refused in one line naming the file or the argument, and
nothing from a file runs. ``ZOO_DEBUG=1`` shows the traceback; a bug keeps its traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_competitions_house_prices import tiny_config, write_house_csvs

from competitions.__main__ import main as competitions
from zoo.cli.fit import main as fit
from zoo.cli.forecast import main as forecast
from zoo.cli.generate import main as generate
from zoo.cli.show_augment import main as show_augment
from zoo.core.checkpoint import CheckpointError, load_checkpoint
from zoo.run.errors import run_command

ROOT = Path(__file__).parents[1]
CONFIGS = ROOT / "configs"


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))  # runs if the file is unpickled without weights_only


def one_line(command, argv: list[str]) -> str:
    """The message ``command`` exits with through the shared boundary; it must be one line."""
    with pytest.raises(SystemExit) as exit_:
        run_command(lambda: command(argv))
    message = str(exit_.value)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Checkpoints that zoo.fit wrote: a sine regression and a character language model."""
    root = tmp_path_factory.mktemp("runs")
    (root / "timemachine.txt").write_text("The Time Traveller, ... the Time-Traveller!\n" * 40)
    common = ["--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
              "--trainer.max_epochs", "1"]  # fmt: skip
    fit(["--config", str(CONFIGS / "sine_mlp.yaml"), "--name", "sine", *common])
    fit(["--config", str(CONFIGS / "gru_time_machine.yaml"), "--name", "lm", *common,
         "--data.init_args.data_dir", str(root), "--data.init_args.max_tokens", "null",
         "--data.init_args.batch_size", "4", "--data.init_args.num_steps", "10",
         "--model.init_args.arch_kwargs", "{num_hiddens: 8}", "--trainer.check_val_every_n_epoch", "1"])  # fmt: skip
    return {name: root / name / "version_0" / "checkpoints" / "last.ckpt" for name in ("sine", "lm")}


@pytest.fixture(scope="module")
def house(tmp_path_factory) -> dict[str, Path]:
    """A prepared house-prices work folder (no fit: each test writes the cv.json it needs)."""
    root = tmp_path_factory.mktemp("house")
    write_house_csvs(root / "data")
    config = tiny_config(root)
    competitions(["house_prices", "prepare", "--data_dir", str(root / "data"), "--work_dir", str(root / "work"),
                  "--config", config])  # fmt: skip
    return {"data": root / "data", "work": root / "work", "config": Path(config)}


def _point_cv_at(work: Path, checkpoint: Path) -> None:
    """cv.json as the fit stage writes it, naming ``checkpoint`` as fold 0's model."""
    cv = {"cv_score": 0.0, "folds": [{"fold": 0, "checkpoint": str(checkpoint), "score": 0.0}]}
    (work / "cv.json").write_text(json.dumps(cv))


def _predict(house: dict[str, Path]) -> list[str]:
    return ["house_prices", "predict", "--work_dir", str(house["work"]), "--config", str(house["config"])]


# -- checkpoints ----------------------------------------------------------------------------
def test_a_crafted_checkpoint_runs_nothing_in_any_command(tmp_path, house):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": "zoo.tasks.Regression"},
                "datamodule_hyper_parameters": {}, "x": _Payload(marker)}, evil)  # fmt: skip
    _point_cv_at(house["work"], evil)
    commands = [
        ["zoo", "forecast", "--ckpt_path", str(evil), "--out", str(tmp_path / "f.png")],
        ["zoo", "generate", "--ckpt_path", str(evil)],
        ["competitions", *_predict(house)],
    ]
    env = {k: v for k, v in os.environ.items() if k != "ZOO_DEBUG"}
    procs = [subprocess.Popen([sys.executable, "-m", *c], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in commands]  # fmt: skip
    for command, proc in zip(commands, procs):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1 and "Traceback" not in err, (command, err[-2000:])
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"error: {evil}: refused to load: it asks for posix.mkdir"), (command, last)
    assert not marker.exists()
    assert not (house["work"] / "submission.csv").exists()


@pytest.mark.parametrize("damage", ["not a checkpoint", "truncated"])
def test_a_damaged_checkpoint_is_named_in_one_line(tmp_path, runs, house, damage):
    bad = tmp_path / "last.ckpt"
    good = runs["sine"].read_bytes()
    bad.write_bytes(b"hello, I am a text file\n" * 20 if damage == "not a checkpoint" else good[: len(good) // 2])
    _point_cv_at(house["work"], bad)
    expected = f"error: {bad}: not a readable PyTorch checkpoint (truncated or another format)"
    assert one_line(forecast, ["--ckpt_path", str(bad), "--out", str(tmp_path / "f.png")]).startswith(expected)
    assert one_line(generate, ["--ckpt_path", str(bad)]).startswith(expected)
    assert one_line(competitions, _predict(house)).startswith(expected)


def test_another_models_checkpoint_says_what_it_holds(tmp_path, runs, house):
    sine, lm = runs["sine"], runs["lm"]
    assert one_line(generate, ["--ckpt_path", str(sine)]).startswith(
        f"error: {sine}: its task is zoo.tasks.Regression (arch mlp_regressor), not a LanguageModel"
    )
    assert one_line(forecast, ["--ckpt_path", str(lm), "--out", str(tmp_path / "f.png")]).startswith(
        f"error: {lm}: its task is zoo.tasks.LanguageModel (arch gru), not a Regression"
    )
    _point_cv_at(house["work"], sine)
    assert one_line(competitions, _predict(house)).startswith(
        f"error: {sine}: its data module, NoisySine, lists no test rows to predict"
    )


def test_weights_that_do_not_fit_and_classes_outside_the_zoo(tmp_path, runs):
    ckpt = load_checkpoint(runs["sine"])
    ckpt["hyper_parameters"]["arch_kwargs"] = {"hidden": [20]}  # the saved weights have 10 hidden units
    torch.save(ckpt, tmp_path / "wider.ckpt")
    message = one_line(forecast, ["--ckpt_path", str(tmp_path / "wider.ckpt"), "--out", str(tmp_path / "f.png")])
    assert message.startswith(f"error: {tmp_path / 'wider.ckpt'}: its weights do not fit the zoo.tasks.Regression "
                              "(arch mlp_regressor) its hyper-parameters describe")  # fmt: skip
    ckpt["hyper_parameters"]["_class_path"] = "subprocess.Popen"
    torch.save(ckpt, tmp_path / "foreign.ckpt")
    message = one_line(forecast, ["--ckpt_path", str(tmp_path / "foreign.ckpt"), "--out", str(tmp_path / "f.png")])
    assert "its task is subprocess.Popen (arch mlp_regressor), outside the zoo's packages" in message


def test_zoo_debug_shows_the_traceback_and_bugs_keep_theirs(tmp_path, monkeypatch):
    (tmp_path / "x.ckpt").write_text("not a checkpoint")
    monkeypatch.setenv("ZOO_DEBUG", "1")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        run_command(lambda: generate(["--ckpt_path", str(tmp_path / "x.ckpt")]))
    monkeypatch.delenv("ZOO_DEBUG")
    with pytest.raises(KeyError):  # not a user's mistake: the traceback stays
        run_command(lambda: {}["missing"])


# -- configs, CSVs, folds, output paths -----------------------------------------------------
def test_configs_that_are_not_utf8_or_not_yaml_are_named(tmp_path, house):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("# caf\xe9\ndata: {class_path: datamodules.FashionMNIST}\n".encode("latin-1"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [1, 2\nfit: 3\n")
    assert one_line(show_augment, ["--config", str(latin1)]).startswith(f"error: {latin1}: not UTF-8 text (offset 5")
    assert one_line(show_augment, ["--config", str(broken)]).startswith(
        f"error: {broken}, line 2, column 4: not valid YAML"
    )
    args = ["house_prices", "prepare", "--data_dir", str(house["data"]), "--work_dir", str(tmp_path / "w")]
    assert one_line(competitions, [*args, "--config", str(latin1)]).startswith(f"error: {latin1}: not UTF-8 text")
    assert one_line(competitions, [*args, "--config", str(CONFIGS / "sine_mlp.yaml")]).startswith(
        f"error: {CONFIGS / 'sine_mlp.yaml'}: expected a competition config"
    )


@pytest.mark.parametrize("content, expected", [
    (b"", "empty file"),
    (bytes(range(256)) * 8, "not UTF-8 text"),
    (b"Id,MSSubClass,LotFrontage,GrLivArea,MSZoning,Alley\n", "no rows"),
])  # fmt: skip
def test_competition_csvs_that_are_empty_binary_or_header_only(tmp_path, content, expected):
    _, test_csv = write_house_csvs(tmp_path / "data")
    test_csv.write_bytes(content)
    message = one_line(competitions, ["house_prices", "prepare", "--data_dir", str(tmp_path / "data"),
                                      "--work_dir", str(tmp_path / "w")])  # fmt: skip
    assert message.startswith(f"error: {test_csv}: {expected}")


def test_a_fold_that_does_not_exist_is_refused_before_training(house):
    args = ["house_prices", "fit", "--work_dir", str(house["work"]), "--config", str(house["config"])]
    message = one_line(competitions, [*args, "--train_folds", "0,7"])
    assert message.startswith(f"error: --train_folds (cv.train_folds): no fold 7 in {house['work'] / 'folds.csv'}, "
                              "which holds folds 0, 1")  # fmt: skip
    assert not any(house["work"].glob("fold[0-9]*")) and not (house["work"] / "recipe.yaml").exists()


def test_output_that_is_a_folder_is_refused_before_predicting(tmp_path, house):
    message = one_line(competitions, [*_predict(house), "--output", str(tmp_path)])
    assert message.startswith(f"error: --output {tmp_path}: is a folder; expected the submission's file name")
    assert list(tmp_path.iterdir()) == []
