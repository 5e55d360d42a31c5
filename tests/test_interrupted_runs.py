"""Faults that leave nothing half done: a competition killed in its second fold continues from
the finished fold, a killed reproduction table from its finished row, and a full disk while a
checkpoint, a ``metrics.json`` or a submission is written keeps the previous file byte for byte,
leaves no temporary file and ends the command with one line."""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import yaml

from competitions.__main__ import main as competitions_main
from tests.test_competitions_house_prices import write_house_csvs
from zoo.cli.fit import main as fit_main
from zoo.run.errors import run_command
from zoo.run.folder import VERSION_ENV
from zoo.run.folds import fit_folds

ROOT = Path(__file__).parents[1]
KILL_ENV = "ZOO_TEST_SIGKILL"  # only a process started with it set is killed: its rerun is not
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(Path(__file__).parent)]), KILL_ENV: "1"}
ENV.pop(VERSION_ENV, None)

RECIPE = """seed_everything: 0
trainer: {max_epochs: 3, enable_progress_bar: false, enable_model_summary: false}
model:
  class_path: zoo.tasks.Regression
  init_args: {arch: linear, init: normal, optimizer: sgd, lr: 0.1}
data:
  class_path: datamodules.SyntheticRegression
  init_args: {num_train: 40, num_val: 20, batch_size: 10}
"""


class SigkillInRun(L.Callback):
    """At ``step`` of the run named ``name``, when the process was started with ``KILL_ENV`` set,
    kills its own process with SIGKILL (no clean-up runs), or with ``parent`` the process that
    started it (writing its own id to ``pid_file`` first, and then waiting to be killed with it)."""

    def __init__(self, name: str, step: int, parent: bool = False, pid_file: str = "") -> None:
        self.name, self.step, self.parent, self.pid_file = name, step, parent, pid_file

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        here = Path(trainer.log_dir).parent.name == self.name
        if os.environ.get(KILL_ENV) and here and trainer.global_step == self.step:
            if self.parent:
                Path(self.pid_file).write_text(str(os.getpid()))
            os.kill(os.getppid() if self.parent else os.getpid(), signal.SIGKILL)
            if self.parent:
                # the parent's death reaches this process a moment later; training on until then
                # could be cut inside a checkpoint write. A process that outlives the wait trains
                # on, and the test's check that it is gone fails.
                time.sleep(30)


def _kill_config(path: Path, name: str, step: int, **kwargs) -> str:
    init = {"name": name, "step": step, **kwargs}
    callback = {"class_path": f"{SigkillInRun.__module__}.SigkillInRun", "init_args": init}
    path.write_text(yaml.safe_dump({"trainer": {"callbacks": [callback]}}))
    return str(path)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _temporary_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.tmp"))  # atomic_write's .<name>.<hex>.tmp


# -- a competition killed in its second fold --------------------------------------------------
@pytest.fixture(scope="module")
def interrupted_competition(tmp_path_factory) -> dict:
    """House prices, 2 folds of 3 one-step epochs: ``all`` SIGKILLed at step 2 of fold 1, then
    the same command again, in this process."""
    tmp = tmp_path_factory.mktemp("competition")
    data, work = tmp / "data", tmp / "work"
    write_house_csvs(data)
    cfg = yaml.safe_load((ROOT / "competitions/house_prices/config.yaml").read_text())
    cfg["cv"]["folds"] = 2
    cfg["fit"]["trainer"].update(max_epochs=3, limit_val_batches=0)
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    kill = _kill_config(tmp / "kill.yaml", "fold1", 2)
    argv = ["house_prices", "all", "--data_dir", str(data), "--work_dir", str(work),
            "--config", str(tmp / "config.yaml"), "--", "--config", kill]  # fmt: skip
    killed = subprocess.run([sys.executable, "-m", "competitions", *argv], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    fold0_ckpt = work / "fold0" / "version_0" / "checkpoints" / "last.ckpt"
    after_kill = {
        "files": sorted(p.name for p in work.iterdir()),
        "fold1_runs": sorted(p.name for p in (work / "fold1").iterdir()),
        "fold0_ckpt_mtime": fold0_ckpt.stat().st_mtime_ns,
        "temporary": _temporary_files(tmp),
    }
    os.environ.pop(VERSION_ENV, None)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        submission = competitions_main(argv)
    return {"work": work, "after_kill": after_kill, "stderr": stderr.getvalue(), "submission": submission,
            "tmp": tmp, "argv": argv}  # fmt: skip


def test_a_killed_competition_reruns_only_the_unfinished_fold(interrupted_competition):
    work, after = interrupted_competition["work"], interrupted_competition["after_kill"]
    # killed in fold 1: fold 0 recorded as finished, fold 1 with its last checkpoint, nothing else written
    assert "fold0.done.json" in after["files"] and "fold1.done.json" not in after["files"]
    assert not {"cv.json", "scores.csv", "submission.csv"} & set(after["files"])
    assert after["fold1_runs"] == ["version_0"] and after["temporary"] == []

    # the rerun takes fold 0 from its metrics.json (one line), and trains fold 1 again
    metrics0 = work / "fold0" / "version_0" / "metrics.json"
    reused = [line for line in interrupted_competition["stderr"].splitlines() if "reused" in line]
    assert reused == [f"fold 0: reused {metrics0}, finished with the same arguments "
                      f"(delete {work / 'fold0.done.json'} to train it again)"]  # fmt: skip
    assert sorted(p.name for p in (work / "fold0").iterdir()) == ["version_0"]
    assert (work / "fold0/version_0/checkpoints/last.ckpt").stat().st_mtime_ns == after["fold0_ckpt_mtime"]
    assert sorted(p.name for p in (work / "fold1").iterdir()) == ["version_0", "version_1"]

    cv = json.loads((work / "cv.json").read_text())
    assert [f["fold"] for f in cv["folds"]] == [0, 1]
    assert cv["folds"][0]["checkpoint"] == str(work / "fold0/version_0/checkpoints/last.ckpt")
    assert cv["folds"][1]["checkpoint"] == str(work / "fold1/version_1/checkpoints/last.ckpt")
    assert cv["folds"][0]["score"] == json.loads(metrics0.read_text())["test"]["test/rmse"]
    assert pd.read_csv(work / "scores.csv")["stage"].tolist() == ["fit", "predict"]
    assert len(pd.read_csv(interrupted_competition["submission"])) == 16
    assert _temporary_files(interrupted_competition["tmp"]) == []


def test_fold_records_match_arguments_and_file_contents(tmp_path, capsys):
    """A fold is reused only with the same arguments and the same content of the files they name."""
    recipe, calls = tmp_path / "recipe.yaml", []
    recipe.write_text("a: 1\n")

    def fit(args: list[str]) -> dict:
        calls.append(args[-1])
        run = tmp_path / args[-1] / f"version_{calls.count(args[-1]) - 1}"
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"test": {"test/acc": len(calls)}}))
        return {"test": {"test/acc": len(calls)}, "metrics_file": str(run / "metrics.json")}

    def run(*extra: str) -> list[dict]:
        return fit_folds(fit, lambda k: ["--config", str(recipe), *extra, f"fold{k}"], range(2), tmp_path)

    first = run()
    assert calls == ["fold0", "fold1"]
    assert run() == first and calls == ["fold0", "fold1"]  # read back, not trained
    assert capsys.readouterr().err.count("reused") == 2
    run("--lr", "0.1")  # other arguments: trained again
    assert calls == ["fold0", "fold1"] * 2
    recipe.write_text("a: 2\n")  # the same path with another recipe in it: trained again
    run("--lr", "0.1")
    assert len(calls) == 6
    (tmp_path / "fold1" / "version_2" / "metrics.json").unlink()  # a run whose metrics are gone
    assert [s["test"]["test/acc"] for s in run("--lr", "0.1")] == [5, 7]


# -- a reproduction table killed in its second row --------------------------------------------
spec = importlib.util.spec_from_file_location("reproduce", ROOT / "scripts" / "reproduce.py")
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_killed_reproduction_table_reruns_only_the_unfinished_row(tmp_path, monkeypatch, capsys):
    """reproduce.py SIGKILLed while its zoo.fit of the second row trains: that run stops with it
    (it does not train on, unseen, beside the rerun), and the rerun runs only the second row."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE)
    row = {"lecture": "08 fake", "recipe": str(recipe), "setting": "3 epochs", "course": 1.0,
           "metric": "val/loss", "better": "lower", "data": None}  # fmt: skip
    pid_file = tmp_path / "zoo_fit.pid"
    kill = _kill_config(tmp_path / "kill.yaml", "tiny_b", 6, parent=True, pid_file=str(pid_file))  # epoch 2
    rows = [{**row, "id": "tiny_a", "expect_s": 1}, {**row, "id": "tiny_b", "expect_s": 2, "args": ["--config", kill]}]
    (tmp_path / "registry.yaml").write_text(json.dumps(rows))
    out, runs = tmp_path / "docs" / "REPRO.md", tmp_path / "runs"
    args = ["--registry", str(tmp_path / "registry.yaml"), "--out", str(out), "--runs", str(runs),
            "--seeds", "1", "--course_results", str(tmp_path / "course_here"),
            "--data_root", str(tmp_path)]  # fmt: skip
    killed = subprocess.run([sys.executable, "scripts/reproduce.py", *args], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    child = int(pid_file.read_text())
    for _ in range(50):  # the kernel delivers the parent's death to the child at once; allow a moment
        if not _alive(child):
            break
        time.sleep(0.1)
    assert not _alive(child), "zoo.fit trains on after reproduce.py was killed"
    cache = json.loads(out.with_suffix(".json").read_text())  # whole: written atomically after tiny_a
    assert set(cache["ours"]["tiny_a"]["seeds"]) == {"0"} and cache["ours"]["tiny_b"]["seeds"] == {}
    assert "tiny_a" in out.read_text() and _temporary_files(tmp_path) == []
    assert not list(runs.glob("tiny_b/*/metrics.json"))

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setenv("PYTHONPATH", ENV["PYTHONPATH"])  # the recipe names the callback of this file
    monkeypatch.delenv(VERSION_ENV, raising=False)
    cache = reproduce.main(args)
    printed = capsys.readouterr().out
    assert "tiny_b (ours, seed 0): expected" in printed and "tiny_a (ours, seed 0): expected" not in printed
    assert sorted(p.name for p in (runs / "tiny_a").iterdir()) == ["version_0"]
    assert {r: set(cache["ours"][r]["seeds"]) for r in ("tiny_a", "tiny_b")} == {"tiny_a": {"0"}, "tiny_b": {"0"}}
    assert cache["ours"]["tiny_b"]["seeds"]["0"]["run_dir"] == str(runs / "tiny_b" / "version_1")
    assert json.loads(out.with_suffix(".json").read_text()) == cache
    assert "error" not in cache["ours"]["tiny_b"] and _temporary_files(tmp_path) == []


# -- a full disk ------------------------------------------------------------------------------
class _HalfWritten:
    """A file that takes half of its first write, then fails as a full disk does."""

    def __init__(self, f) -> None:
        self.f = f

    def write(self, data):
        self.f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


class _FullDiskOS:
    """``os`` as ``zoo.core.io`` sees it, but the temporary file of a target named ``name`` is
    a ``_HalfWritten`` one."""

    def __init__(self, name: str) -> None:
        self.name, self.fds = name, set()

    def __getattr__(self, attr: str):
        return getattr(os, attr)

    def open(self, path, flags, mode=0o777):
        fd = os.open(path, flags, mode)
        if Path(path).name.startswith(f".{self.name}."):
            self.fds.add(fd)
        return fd

    def fdopen(self, fd, *args, **kwargs):
        f = os.fdopen(fd, *args, **kwargs)
        return _HalfWritten(f) if fd in self.fds else f


def _one_line_failure(call, target: Path) -> str:
    with pytest.raises(SystemExit) as exit_:
        call()
    message = str(exit_.value)
    assert "\n" not in message and f"No space left on device: '{target}'" in message, message
    return message


def _fit_args(root: Path, *extra: str) -> list[str]:
    recipe = root / "tiny.yaml"
    recipe.write_text(RECIPE)
    return ["--config", str(recipe), "--trainer.default_root_dir", str(root), "--name", "run", *extra]


@pytest.mark.parametrize("target", ["last.ckpt", "metrics.json"])
def test_a_full_disk_keeps_the_previous_file(tmp_path, monkeypatch, target):
    """A one-epoch run, resumed to two epochs with a full disk while its ``last.ckpt`` (at the
    epoch's end) or its ``metrics.json`` (at the run's end) is written over the first one's."""
    monkeypatch.delenv(VERSION_ENV, raising=False)
    fit_main(_fit_args(tmp_path, "--trainer.max_epochs", "1"))
    run = tmp_path / "run" / "version_0"
    path = run / "checkpoints" / target if target.endswith(".ckpt") else run / target
    before = path.read_bytes()
    monkeypatch.setattr("zoo.core.io.os", _FullDiskOS(target))
    monkeypatch.delenv(VERSION_ENV, raising=False)
    args = _fit_args(tmp_path, "--trainer.max_epochs", "2", "--ckpt_path", "last")
    _one_line_failure(lambda: fit_main(args, one_line_errors=True), path)
    assert path.read_bytes() == before and _temporary_files(tmp_path) == []


def test_a_full_disk_keeps_the_previous_submission(interrupted_competition, monkeypatch):
    work = interrupted_competition["work"]
    path = work / "submission.csv"
    before, log = path.read_bytes(), (work / "scores.csv").read_bytes()
    monkeypatch.setattr("zoo.core.io.os", _FullDiskOS("submission.csv"))
    predict = ["house_prices", "predict", *interrupted_competition["argv"][2:6]]  # --data_dir, --work_dir
    predict += ["--config", interrupted_competition["argv"][7]]
    _one_line_failure(lambda: run_command(lambda: competitions_main(predict)), path)
    assert path.read_bytes() == before and (work / "scores.csv").read_bytes() == log  # no score for it
    assert _temporary_files(interrupted_competition["tmp"]) == []
