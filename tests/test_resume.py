"""Resuming a run to train longer: the schedule is rebuilt for the new total, and
``--ckpt_path last`` says which run it continues and what the command line changes."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from jsonargparse import Namespace

from zoo.cli.fit import main
from zoo.run.folder import default_name

CONFIGS = Path(__file__).parents[1] / "configs"


def _args(data: Path, root: Path, *extra: str) -> list[str]:
    return ["--config", str(CONFIGS / "fashion_mnist_fast.yaml"), "--data.init_args.data_dir", str(data),
            "--data.init_args.val_size", "60", "--data.init_args.batch_size", "64",
            "--data.init_args.download", "false", "--trainer.default_root_dir", str(root),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", *extra]  # fmt: skip


def test_a_one_cycle_run_resumed_for_more_epochs_trains_on(fashion_dir, tmp_path, capsys):
    main(_args(fashion_dir, tmp_path, "--trainer.max_epochs", "1"))  # onecycle over 1 epoch
    capsys.readouterr()
    summary = main(_args(fashion_dir, tmp_path, "--ckpt_path", "last", "--trainer.max_epochs", "2",
                         "--model.init_args.lr", "0.02"))  # fmt: skip
    err = capsys.readouterr().err
    run = tmp_path / "fashion_mnist_fast" / "version_0"
    assert f"resume: {run} " in err and "the newest of 1 run(s) named fashion_mnist_fast" in err
    differ = next(line for line in err.splitlines() if "differs from" in line)
    assert "and wins" in differ and "model.init_args.lr 0.01 -> 0.02" in differ
    assert "trainer.max_epochs 1 -> 2" in differ and "num_classes" not in differ  # linked facts are not settings
    rebuilt = re.search(r"OneCycleLR learning-rate schedule was built for (\d+) steps; rebuilt for (\d+) and "
                        r"continued at step (\d+)", err)  # fmt: skip
    assert rebuilt, err
    old, new, at = map(int, rebuilt.groups())
    assert new == 2 * old and at == old
    log = pd.read_csv(run / "metrics.csv")
    trained = log[log["train/loss"].notna()]["epoch"].astype(int)  # one CSV log carries on across both parts
    assert set(trained) == {0, 1} and summary["epochs"] == 2


def test_the_default_run_name_tells_another_data_set_apart():
    recipe = CONFIGS / "gru_time_machine.yaml"
    same = Namespace(config=[recipe], data=Namespace(class_path="datamodules.TimeMachine"))
    other = Namespace(config=[recipe], data=Namespace(class_path="datamodules.PennTreebank"))
    assert default_name(same) == "gru_time_machine"
    assert default_name(other) == "gru_time_machine_penntreebank"
