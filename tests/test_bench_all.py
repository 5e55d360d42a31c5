"""scripts/bench_all.py: the table of every course-against-ours bench.

The smoke run covers two of the six benches, ``word2vec`` and ``seq2seq`` (each in its own
process, a few batches on tiny PTB and fra-eng files written here, the course's side on the real
d2l 1.0.3): the subprocesses, the benches' JSON, the rows, the markdown and JSON table. The
others (``lenet``, ``transformer``, ``bert``, ``detection``) cost 10-30 s each even at smoke
settings, so only their command lines are checked here; ``python -m scripts.bench_all --smoke``
runs them all. The rest is cheap: the GPU kept from benches without a GPU path, a failed bench's
line, ``--gpu`` on a machine without CUDA."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from scripts import bench_all
from tests.test_translation import write_counting_pairs
from zoo.core.errors import ConfigError

REAL = Path(os.environ.get("D2L_PATH", "/work/peer/d2l103"))  # as tests/test_course_side.py finds it


def _ptb(folder: Path) -> None:
    """PTB's three files: lines of words from a small vocabulary (each word seen >= 10 times)."""
    rng = np.random.default_rng(0)
    words = ["chip", "intel", "market"] + [f"w{i}" for i in range(40)]
    folder.mkdir(parents=True)
    for name, n in (("train", 400), ("valid", 40), ("test", 40)):
        lines = (" ".join(rng.choice(words, rng.integers(4, 12))) for _ in range(n))
        (folder / f"ptb.{name}.txt").write_text("".join(f" {line} \n" for line in lines))


@pytest.mark.skipif(
    not (REAL / "d2l" / "torch.py").is_file(), reason=f"the course's d2l 1.0.3 is not installed at {REAL}"
)
def test_smoke_run_of_word2vec_and_seq2seq_writes_the_table(tmp_path: Path):
    data = tmp_path / "data"
    _ptb(data / "ptb" / "ptb")
    write_counting_pairs(data / "fra_eng" / "fra-eng", n=1100)  # 601 to train on, as the course
    out = tmp_path / "out"
    report = bench_all.main(["--d2l_path", str(REAL), "--smoke", "--only", "word2vec", "seq2seq", "--threads", "1",
                             "--data_root", str(data), "--out", str(out)])  # fmt: skip
    assert [b["bench"] for b in report["benches"]] == ["word2vec", "seq2seq"]
    rows = [r for b in report["benches"] for r in b["rows"]]
    assert len(rows) == 2 and all("error" not in b for b in report["benches"])
    for r in rows:
        assert r["course"] > 0 and r["ours"] > 0 and r["ratio"] == round(r["ours"] / r["course"], 3)
        assert r["course_quality"].startswith("loss ") and r["our_quality"].startswith("loss ")
        assert r["device"] == "cpu"
    assert json.loads((out / "bench_all.json").read_text())["benches"][1]["rows"] == report["benches"][1]["rows"]
    table = (out / "bench_all.md").read_text()
    assert table.startswith("Smoke run") and "| word2vec, PTB, 1 epoch(s) |" in table and "| seq2seq, fra-eng" in table
    assert (out / "word2vec.log").is_file() and (out / "seq2seq.json").is_file()


def _args(tmp_path: Path, **kw) -> argparse.Namespace:
    return argparse.Namespace(**{"d2l_path": str(tmp_path), "data_root": "/data", "smoke": False, "gpu": False,
                                 "threads": None, "scratch": str(tmp_path), **kw})  # fmt: skip


def test_every_bench_gets_its_data_the_course_package_and_a_json_file(tmp_path: Path):
    for smoke in (False, True):
        for name in bench_all.BENCHES:
            cmd = bench_all.command(name, _args(tmp_path, smoke=smoke), tmp_path / f"{name}.json")
            assert cmd[1:3] == ["-m", f"scripts.{bench_all.BENCHES[name].script}"]
            assert cmd[-1] == str(tmp_path / f"{name}.json") and cmd[4].startswith("/data/")
            if not (smoke and name == "lenet"):  # --d2l_path, or recipe_bench's --peer_pythonpath
                assert str(tmp_path.resolve()) in cmd
    lenet = bench_all.command("lenet", _args(tmp_path, smoke=True), tmp_path / "x.json")
    assert "--overhead_only" in lenet and "--peer" not in lenet  # the course's script has no short setting


def test_gpu_only_for_benches_whose_both_sides_can_use_it(tmp_path: Path):
    env, device = bench_all.environment("seq2seq", _args(tmp_path, gpu=True, threads=1))
    assert env["CUDA_VISIBLE_DEVICES"] == "" and device.startswith("cpu (no GPU path") and env["OMP_NUM_THREADS"] == "1"
    env, device = bench_all.environment("lenet", _args(tmp_path, gpu=True))
    assert "CUDA_VISIBLE_DEVICES" not in env or env["CUDA_VISIBLE_DEVICES"] == os.environ["CUDA_VISIBLE_DEVICES"]
    assert device == "cuda"
    assert bench_all.environment("lenet", _args(tmp_path))[0]["CUDA_VISIBLE_DEVICES"] == ""  # a CPU run is all CPU


def test_a_failed_bench_is_a_line_of_the_table():
    report = {"smoke": False, "wall_seconds": 3.0, "machine": {"started": "now", "cpus": 2, "platform": "x",
              "threads": 1, "load_before": [0.1], "load_after": [0.2]},
              "benches": [{"bench": "bert", "command": "python -m scripts.bert_bench", "device": "cpu",
                           "wall_seconds": 3.0, "rows": [], "error": "exit status 1: boom"}]}  # fmt: skip
    assert "| bert | failed: exit status 1: boom |" in bench_all.markdown(report)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_gpu_without_cuda_is_one_line(tmp_path: Path):
    (tmp_path / "d2l").mkdir()
    (tmp_path / "d2l" / "__init__.py").write_text("")
    (tmp_path / "ptb" / "ptb").mkdir(parents=True)
    with pytest.raises(ConfigError, match="--gpu: no CUDA"):
        bench_all.main(["--d2l_path", str(tmp_path), "--gpu", "--only", "word2vec", "--data_root", str(tmp_path),
                        "--dry_run"])  # fmt: skip
