"""``python -m zoo.fit`` end to end on tiny real-format data."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from zoo.cli.fit import main

ROOT = Path(__file__).parents[1]
RECIPE = ROOT / "configs" / "lenet_fashion_mnist.yaml"


def _args(data_dir, root, *extra):
    return ["--config", str(RECIPE), "--data.init_args.data_dir", str(data_dir),
            "--data.init_args.val_size", "60", "--data.init_args.batch_size", "32",
            "--data.init_args.download", "false", "--trainer.default_root_dir", str(root),
            "--trainer.enable_progress_bar", "false", *extra]  # fmt: skip


def test_fast_dev_run(fashion_dir, tmp_path):
    summary = main(_args(fashion_dir, tmp_path, "--trainer.fast_dev_run", "1"))
    assert 0.0 <= summary["test"]["test/acc"] <= 1.0


def test_fit_writes_metrics_config_curves_and_learns(fashion_dir, tmp_path):
    summary = main(_args(fashion_dir, tmp_path, "--trainer.max_epochs", "3", "--name", "tiny",
                         "--model.init_args.arch", "lenet_bn", "--model.init_args.optimizer", "adam",
                         "--model.init_args.lr", "0.01", "--trainer.log_every_n_steps", "2"))  # fmt: skip
    run = tmp_path / "tiny" / "version_0"
    metrics = json.loads((run / "metrics.json").read_text())
    assert summary.pop("metrics_file") == str(run / "metrics.json")
    assert metrics == json.loads(json.dumps(summary))
    assert metrics["epochs"] == 3 and metrics["train_examples_per_second"] > 0
    assert metrics["test"]["test/acc"] > 0.5  # the square's place gives the class away
    assert metrics["best_val"]["val/acc"] > 0.5
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = pd.read_csv(run / "metrics.csv")
    train = log.dropna(subset=["train/acc"])
    assert list(train["epoch"]) == [0, 1, 2] and train["train/loss"].iloc[-1] < train["train/loss"].iloc[0]
    # the step loss reaches the loggers on every log_every_n_steps-th step (240 / 32 -> 8 steps an epoch)
    steps = log.dropna(subset=["train/loss_step"])
    assert list(steps["step"]) == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]
    assert list(steps["epoch"]) == [0] * 4 + [1] * 4 + [2] * 4 and steps["train/loss_step"].gt(0).all()
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["init_args"]["arch"] == "lenet_bn"
    assert config["model"]["init_args"]["optimizer"] == "adam"
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hparams["num_classes"] == 10 and "in_features" not in hparams  # linked from the data
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "checkpoints").glob("best-*.ckpt"))) == 1


def test_resume_from_last_continues_epochs(fashion_dir, tmp_path):
    main(_args(fashion_dir, tmp_path, "--trainer.max_epochs", "1", "--name", "r"))
    summary = main(_args(fashion_dir, tmp_path, "--trainer.max_epochs", "2", "--name", "r",
                         "--ckpt_path", "last"))  # fmt: skip
    assert summary["epochs"] == 2
    run = tmp_path / "r" / "version_0"
    assert not (tmp_path / "r" / "version_1").exists()  # the same run folder carries on
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2 * 8  # 240 examples / 32 = 8 steps an epoch
    log = pd.read_csv(run / "metrics.csv")
    assert sorted(log.dropna(subset=["val/acc"])["epoch"]) == [0, 1]  # one log, both epochs
    history = next(v for k, v in ckpt["callbacks"].items() if k.startswith("RunReport"))["history"]
    assert [row["epoch"] for row in history] == [0, 1]  # the curves cover the whole run


def test_resume_without_a_run_is_a_clear_error(fashion_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="no .*last.ckpt to resume"):
        main(_args(fashion_dir, tmp_path, "--name", "never", "--ckpt_path", "last"))


def test_wandb_offline_run_writes_its_files(fashion_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    main(_args(fashion_dir, tmp_path, "--trainer.max_epochs", "1", "--name", "w", "--wandb", "true"))
    runs = list((tmp_path / "w" / "version_0" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb")), "the offline run has no .wandb event file for `wandb sync`"


def test_print_config_reproduces_the_recipe():
    out = subprocess.run([sys.executable, "-m", "zoo.fit", "--config", str(RECIPE), "--print_config"],
                         capture_output=True, text=True, check=True, cwd=RECIPE.parents[1]).stdout  # fmt: skip
    config = yaml.safe_load(out)
    assert config["model"]["init_args"]["lr"] == 0.9
    assert config["data"]["class_path"] == "datamodules.FashionMNIST"
    assert config["seed_everything"] == 42


def test_resume_with_another_model_fails_before_the_run_folder_changes(fashion_dir, tmp_path):
    main(_args(fashion_dir, tmp_path, "--trainer.max_epochs", "1", "--name", "r"))
    run = tmp_path / "r" / "version_0"
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match=r"last\.ckpt: holds lenet, whose parameters differ .*first: model\."):
        main(_args(fashion_dir, tmp_path, "--name", "r", "--ckpt_path", "last",
                   "--model.init_args.arch", "mlp"))  # fmt: skip
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # config.yaml too
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["version_0"]


def test_resume_from_a_file_that_is_not_a_checkpoint_is_one_line(fashion_dir, tmp_path):
    bad = tmp_path / "notes.ckpt"
    bad.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(SystemExit) as exit_:
        main(_args(fashion_dir, tmp_path, "--name", "x", "--ckpt_path", str(bad)), one_line_errors=True)
    assert "\n" not in str(exit_.value) and f"{bad}: not a readable PyTorch checkpoint" in str(exit_.value)
    assert not (tmp_path / "x").exists()


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(fashion_dir, tmp_path):
    poison = tmp_path / "poison.yaml"  # a NaN weight at the first step: the run stops at once
    poison.write_text(yaml.safe_dump({"trainer": {"callbacks": [
        {"class_path": "test_faults.PoisonAt", "init_args": {"step": 0}}]}}))  # fmt: skip
    with pytest.raises(RuntimeError, match="no checkpoint had been saved yet"):
        main(_args(fashion_dir, tmp_path, "--name", "f", "--config", str(poison)))
    assert not (tmp_path / "f" / "version_0").exists()


@pytest.mark.parametrize("name", ["../../escaped", "a/b", ".."])
def test_run_names_stay_one_folder_under_the_root(fashion_dir, tmp_path, name):
    with pytest.raises(ValueError, match="--name"):
        main(_args(fashion_dir, tmp_path / "root", "--name", name, "--trainer.fast_dev_run", "1"))
    assert not (tmp_path / "escaped").exists()


def test_last_checkpoint_is_written_every_epoch_without_validation(fashion_dir, tmp_path):
    main(_args(fashion_dir, tmp_path, "--trainer.max_epochs", "1", "--name", "v",
               "--trainer.check_val_every_n_epoch", "3"))  # fmt: skip
    ckpt = torch.load(tmp_path / "v" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 0 and ckpt["global_step"] == 8


def test_metrics_json_counts_the_whole_run_when_the_best_epoch_is_earlier(fashion_dir, tmp_path):
    # of 3 epochs only the second is validated: the best checkpoint is not the last epoch
    summary = main(_args(fashion_dir, tmp_path, "--trainer.max_epochs", "3", "--name", "b",
                         "--trainer.check_val_every_n_epoch", "2"))  # fmt: skip
    assert Path(summary["best_checkpoint"]).name == "best-001.ckpt"
    examples = summary["train_examples_per_second"] * summary["train_seconds"]
    assert examples == pytest.approx(3 * 240, rel=0.01)  # every epoch, not the best checkpoint's two


def test_python_m_zoo_lists_every_command_and_each_is_a_module_with_main_and_run(capsys):
    from zoo.__main__ import main as zoo_main
    from zoo.cli import COMMANDS

    zoo_main([])
    listing = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in listing
        module = importlib.import_module(f"zoo.cli.{name}")
        assert callable(module.main) and callable(module.run), name
    assert sorted(p.stem for p in (ROOT / "zoo" / "cli").glob("*.py") if p.stem != "__init__") == sorted(COMMANDS)
    with pytest.raises(SystemExit, match="no command 'fitt'; expected one of fit, predict"):
        zoo_main(["fitt", "--help"])
