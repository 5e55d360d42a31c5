"""scripts/bench_all.py: the table of every course-against-ours bench.

The smoke run covers one of the six benches end to end, ``word2vec`` (its own process, 3 batches
on tiny PTB files written here, the course's side on the real d2l 1.0.3): the subprocess, the
bench's JSON, the row, the markdown and JSON table. Every other bench costs 12-40 s even at
smoke settings (``python -m scripts.bench_all --smoke`` runs them all), so here their rows are
read from JSON as their scripts wrote it in a smoke run, trimmed to the fields read, and their
command lines are checked. The rest is cheap: the GPU kept from benches without a GPU path, a
failed bench's line, ``--gpu`` on a machine without CUDA."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from scripts import bench_all
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
def test_smoke_run_of_word2vec_writes_the_table(tmp_path: Path):
    _ptb(tmp_path / "data" / "ptb" / "ptb")
    out = tmp_path / "out"
    report = bench_all.main(["--d2l_path", str(REAL), "--smoke", "--only", "word2vec", "--threads", "1",
                             "--data_root", str(tmp_path / "data"), "--out", str(out)])  # fmt: skip
    [bench] = report["benches"]
    assert bench["bench"] == "word2vec" and "error" not in bench, bench
    [r] = bench["rows"]
    assert r["course"] > 0 and r["ours"] > 0 and r["ratio"] == round(r["ours"] / r["course"], 3)
    assert r["course_quality"].startswith("loss ") and r["our_quality"].startswith("loss ") and r["device"] == "cpu"
    assert json.loads((out / "bench_all.json").read_text())["benches"][0]["rows"] == [r]
    table = (out / "bench_all.md").read_text()
    assert table.startswith("Smoke run") and "| word2vec, PTB, 1 epoch(s) | d2l load_data_ptb" in table
    assert (out / "word2vec.log").is_file() and (out / "word2vec.json").is_file()


# what each bench script wrote in a smoke run (trimmed to the fields bench_all reads); lenet's
# recipe rows, which a smoke run does not make, in the shape recipe_bench writes them
WRITTEN = {
    "lenet": {"rows": [{"recipe": "course d2l train_ch6 (peer)", "test_acc": 0.806,
                        "train_examples_per_second": 5557.7, "wall_seconds": 139.3},
                       {"recipe": "configs/lenet_fashion_mnist.yaml", "test_acc": 0.819,
                        "train_examples_per_second": 14838.0, "wall_seconds": 52.0}],
              "overhead": {"zoo_epoch_s": [7.16], "bare_epoch_s": [8.48], "loop_epoch_s": [6.13],
                           "zoo_epoch_losses": [2.3206], "loop_epoch_losses": [2.3206]}},
    "word2vec": {"epochs": 1, "course": {"tokens_per_second": 2247.1, "loss": 0.693},
                 "zoo": {"tokens_per_second": 19200.0, "loss": 0.6931}},
    "seq2seq": {"archs": {"seq2seq": {"epochs": 1, "course": {"tokens_per_second": 6190.7, "loss_course_scale": 0.519},
                                      "zoo": {"tokens_per_second": 13368.4, "loss_course_scale": 0.5273}}}},
    "transformer": {"archs": {"transformer": {"epochs": 1,
                                              "course": {"tokens_per_second": 3671.6, "loss_course_scale": 0.502},
                                              "zoo": {"tokens_per_second": 6626.1, "loss_course_scale": 0.4949},
                                              "floor": {"tokens_per_second": 7400.0, "loss_course_scale": 0.45}}}},
    "bert": {"steps": 2, "course": {"pairs_per_second": 138.6, "mlm_loss_real_predictions": 8.662, "nsp_loss": 1.223},
             "zoo": {"pairs_per_second": 140.0, "mlm_loss": 8.539, "nsp_loss": 0.854}},
    "detection": {"course_images_per_s": 22.87, "zoo_images_per_s": 23.06, "course_class_err": 0.00802,
                  "course_bbox_mae": 0.00561, "zoo_class_err": 0.00478, "zoo_bbox_mae": 0.00514, "epochs": 1},
}  # fmt: skip


def test_every_bench_json_becomes_rows_with_both_sides_and_their_quality():
    assert set(WRITTEN) == set(bench_all.BENCHES)
    rows = {name: bench_all.BENCHES[name].rows(written) for name, written in WRITTEN.items()}
    assert [len(r) for r in rows.values()] == [3, 1, 1, 2, 1, 1]
    for r in (r for rs in rows.values() for r in rs):
        assert r["course"] > 0 and r["ours"] > 0 and r["ratio"] > 0 and r["course_quality"] and r["our_quality"]
    lenet, wall, overhead = rows["lenet"]
    assert lenet["ratio"] == round(14838.0 / 5557.7, 3) and lenet["our_quality"] == "test acc 0.819"
    assert wall["unit"] == "s wall" and wall["ratio"] == round(139.3 / 52.0, 3)
    floor = rows["transformer"][1]  # the bare loop around the same module, against the course's loop
    assert floor["bench"].startswith("transformer, the bare loop") and floor["ratio"] == round(7400.0 / 3671.6, 3)
    assert overhead["unit"] == "s/epoch" and overhead["ratio"] == round(8.48 / 7.16, 3)  # seconds: course / ours
    assert rows["bert"][0]["course_quality"] == "MLM 8.662 / NSP 1.223"  # over the real predictions, as ours
    assert rows["detection"][0]["our_quality"] == "class err 4.78e-03, bbox MAE 5.14e-03"


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


@pytest.mark.parametrize(("code", "error"), [
    ("import sys; print('no data here'); sys.exit(3)", "exit status 3: no data here"),
    ("import sys; open(sys.argv[1], 'w').write('{}')", "lacks what the table reads (KeyError"),
])  # fmt: skip
def test_a_bench_that_fails_or_writes_another_json_is_an_error_not_a_crash(tmp_path, monkeypatch, code, error):
    monkeypatch.setattr(bench_all, "command", lambda name, args, path: [sys.executable, "-c", code, str(path)])
    result = bench_all.run_bench("bert", _args(tmp_path, timeout=60), tmp_path)
    assert result["rows"] == [] and error in result["error"], result


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
