"""scripts/reproduce.py on registries of tiny experiments: a real zoo.fit run, shortened and marked,
with its curves PNG; rows whose data is missing or that need a GPU, each with its command; seeds
and the cache per row and seed; the course side through a fake module of course_side's
interface; the GPU rows' CPU dry run; the shipped registry's numbering and checks."""

import importlib.util
import json
import pickle
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_idx

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("reproduce", ROOT / "scripts" / "reproduce.py")
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)

RECIPE = """seed_everything: 0
trainer: {max_epochs: 3, check_val_every_n_epoch: 2}
model:
  class_path: zoo.tasks.Regression
  init_args: {arch: linear, init: normal, optimizer: sgd, lr: 0.1}
data:
  class_path: datamodules.SyntheticRegression
  init_args: {num_train: 40, num_val: 20, batch_size: 10}
"""

FAKE_COURSE = """
import json, pathlib
ROWS = {"tiny_anchors": "the course's anchors", "tiny_line": "a line"}
def run(row_id, seed, data_root, **kwargs):
    calls = pathlib.Path(__file__).with_name("calls.txt")
    calls.write_text(calls.read_text() + f"{row_id} {seed}\\n" if calls.exists() else f"{row_id} {seed}\\n")
    if row_id == "tiny_line":
        raise RuntimeError("the course side broke")
    return {"value": 0.5 + 0.1 * seed, "wall_s": 0.1, "curve": [1.0, 0.75, 0.5 + 0.1 * seed]}
"""


def _registry(tmp_path: Path, rows: list[dict] | None = None) -> Path:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE)
    rows = rows or [
        {"id": "tiny_line", "lecture": "08 fake", "recipe": str(recipe), "setting": "3 epochs", "course": 1e-4,
         "metric": "val/loss", "scale": 0.5, "better": "lower", "data": None},
        {"id": "tiny_data", "lecture": "09 fake", "recipe": str(recipe), "setting": "s", "course": 0.9,
         "metric": "test/acc", "better": "higher", "data": "not_here"},
        {"id": "tiny_gpu", "lecture": "10 fake", "recipe": str(recipe), "setting": "s", "course": 0.9,
         "metric": "test/loss", "better": "lower", "data": None, "gpu": True},
    ]  # fmt: skip
    path = tmp_path / "registry.yaml"
    path.write_text(json.dumps(rows))  # JSON is YAML
    return path


def test_generator_runs_marks_skips_caches_and_plots(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    calls = []
    real_run = subprocess.run

    def counted(cmd, **kw):
        if "zoo.fit" in cmd:
            calls.append(cmd)
        return real_run(cmd, **kw)

    monkeypatch.setattr(reproduce.subprocess, "run", counted)
    fits, real_fit = [], reproduce.run_fit

    def counted_fit(entry, fit, runs, in_process=False):
        fits.append(fit)
        return real_fit(entry, fit, runs, in_process)

    monkeypatch.setattr(reproduce, "run_fit", counted_fit)
    registry, out = _registry(tmp_path), tmp_path / "docs" / "REPRO.md"
    args = ["--registry", str(registry), "--out", str(out), "--runs", str(tmp_path / "runs"),
            "--data_root", str(tmp_path / "data"), "--budget", "2", "--seeds", "1"]  # fmt: skip
    cache = reproduce.main(args)
    assert len(calls) == 1  # only the row that can run here
    row = cache["ours"]["tiny_line"]
    assert row["shortened"] == ["2 of 3 epochs"] and "error" not in row, row
    run_dir = Path(row["seeds"]["0"]["run_dir"])
    epochs, values = reproduce.read_curves(run_dir)["val/loss"]
    assert row["seeds"]["0"]["value"] == pytest.approx(0.5 * values[-1])  # the last val/loss, on the course's scale
    assert row["seeds"]["0"]["curve"] == pytest.approx([0.5 * v for v in values]) and epochs == [2]
    assert "needs data: not_here" in cache["ours"]["tiny_data"]["skipped"]
    assert "needs a GPU" in cache["ours"]["tiny_gpu"]["skipped"]
    printed = capsys.readouterr().out
    assert re.search(r"\[1\] tiny_line \(ours, seed 0\): expected 5\.0 min; elapsed 0 s of ~5\.0 min planned", printed)
    assert re.search(r"\[1\] tiny_line \(ours, seed 0\): \S+ \(ok\) in \d+ s", printed)
    page = out.read_text()
    assert page.count("**ok** is") == 1 and "Rows: 3 in all: 1 no, 1 needs-GPU, 1 needs-data." in page
    line = next(li for li in page.splitlines() if li.startswith("| 08 fake"))
    assert "**shortened**: 2 of 3 epochs" in line and "CPU cores" in line
    assert "[png](reproduction/tiny_line.png)" in line
    assert ("yes" if row["seeds"]["0"]["value"] <= 1e-4 + 2e-6 else "no") == line.split(" | ")[8]
    png = out.parent / "reproduction" / "tiny_line.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size <= 60_000
    assert "python -m zoo.fit --config" in next(li for li in page.splitlines() if li.startswith("| 09 fake"))

    # a rerun runs nothing that is current; a changed recipe reruns its row; more seeds add runs
    # (these in this process: what they check is the cache, not the subprocess)
    assert len(fits) == 1
    reproduce.main([*args, "--in_process"])
    assert len(fits) == 1
    Path(registry.parent / "tiny.yaml").write_text(RECIPE.replace("lr: 0.1", "lr: 0.05"))
    reproduce.main([*args, "--only", "tiny_*", "--in_process"])
    assert len(fits) == 2
    cache = reproduce.main([*args[:-1], "2", "--in_process"])
    assert len(fits) == 3 and set(cache["ours"]["tiny_line"]["seeds"]) == {"0", "1"}
    assert "--seed_everything 1" in " ".join(fits[-1]) and len(calls) == 1
    assert "+- " in next(li for li in out.read_text().splitlines() if li.startswith("| 08 fake"))


def test_course_side_runs_per_seed_is_cached_and_banded(tmp_path, monkeypatch):
    """The course side through a module of course_side's interface: seeds, cache, band, errors."""
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    module = tmp_path / "fake_course.py"
    module.write_text(FAKE_COURSE)
    rows = [{"id": "tiny_anchors", "lecture": "42 fake", "check": "anchor_boxes", "setting": "s", "course": 0,
             "tol": 0, "metric": "entries that differ", "better": "lower", "data": None},
            {"id": "tiny_line", "lecture": "08 fake", "check": "anchor_labels", "setting": "s", "course": None,
             "metric": "m", "better": "lower", "data": None}]  # fmt: skip
    out = tmp_path / "REPRO.md"
    args = ["--registry", str(_registry(tmp_path, rows)), "--out", str(out), "--runs", str(tmp_path / "runs"),
            "--course", "--course_module", str(module), "--seeds", "3",
            "--course_results", str(tmp_path / "course_here")]  # fmt: skip
    cache = reproduce.main(args)
    course = cache["course"]["tiny_anchors"]["seeds"]
    assert {s: r["value"] for s, r in course.items()} == pytest.approx({"0": 0.5, "1": 0.6, "2": 0.7})
    assert "the course side broke" in cache["course"]["tiny_line"]["error"]
    assert cache["ours"]["tiny_anchors"]["seeds"]["0"]["value"] == 0  # the check ran once: it has no seeds
    line = next(li for li in out.read_text().splitlines() if li.startswith("| 42 fake"))
    assert "0.600 +- 0.100 (3)" in line  # course here: mean +- sample standard deviation
    assert line.split(" | ")[8] == "yes"  # ours (0 differences) is better than the band
    assert "course side: course side failed" in next(li for li in out.read_text().splitlines() if li.startswith("| 08"))
    assert json.loads((tmp_path / "course_here" / "tiny_anchors-2.json").read_text())["value"] == pytest.approx(0.7)
    ran = (tmp_path / "calls.txt").read_text().splitlines()
    reproduce.main(args)  # cached: only the failed row runs again
    assert (tmp_path / "calls.txt").read_text().splitlines()[len(ran):] == ["tiny_line 0"]

    # the course side's files, whoever wrote them, are read into the table without running anything
    (tmp_path / "calls.txt").unlink()
    (tmp_path / "REPRO.json").unlink()
    (tmp_path / "course_here" / "tiny_line-0.json").write_text(json.dumps({"value": 2.0, "wall_s": 1.0, "threads": 1}))
    cache = reproduce.main([a for a in args if a != "--course"])
    assert not (tmp_path / "calls.txt").exists()
    assert cache["course"]["tiny_anchors"]["seeds"]["1"]["value"] == pytest.approx(0.6)
    assert cache["course"]["tiny_line"]["seeds"]["0"]["machine"].endswith("(1 thread)")


def test_judging_against_the_band_or_the_printed_number():
    loss = {"better": "lower", "course": [0.243, 0.245]}
    assert reproduce.judge(loss, (0.2498, 0, 1), None) == "yes"  # 2% of 0.245 above the range's worse end
    assert reproduce.judge(loss, (0.2501, 0, 1), None) == "no"
    acc = {"better": "higher", "course": 0.779}
    assert reproduce.judge(acc, (0.770, 0, 1), None) == "yes" and reproduce.judge(acc, (0.768, 0, 1), None) == "no"
    # a course-here band of 0.80 +- 0.01 (3 runs): ok down to 0.78, whatever was printed
    assert reproduce.judge(acc, (0.781, 0, 1), (0.80, 0.01, 3)) == "yes"
    assert reproduce.judge(acc, (0.779, 0, 1), (0.80, 0.01, 3)) == "no"
    exact = {"better": "lower", "course": 0, "tol": 0}
    assert reproduce.judge(exact, (0.0, 0, 1), None) == "yes" and reproduce.judge(exact, (1.0, 0, 1), None) == "no"
    assert reproduce.judge({"better": "higher", "course": None}, (0.9, 0, 1), None) == "-"
    assert reproduce.fmt([0.243, 0.245]) == "0.243-0.245" and reproduce.fmt(5e-05) == "5.00e-05"
    assert reproduce.fmt_stats((0.5, 0.1, 3)) == "0.500 +- 0.100 (3)" and reproduce.fmt_stats((0.5, 0.0, 1)) == "0.500"


def test_a_bad_registry_is_one_clear_error(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "- {id: a, lecture: x, recipe: r.yaml, setting: s, course: 1, metric: m, better: more, data: null}\n"
    )
    with pytest.raises(ValueError, match=r"r.yaml: entry 1 \(a\): better must be higher or lower"):
        reproduce.load_registry(path)
    path.write_text("- {id: a, lecture: x}\n")
    with pytest.raises(ValueError, match="missing setting, course, metric, better, data"):
        reproduce.load_registry(path)
    path.write_text("- {id: a, lecture: x, setting: s, course: 1, metric: m, better: lower, data: null}\n")
    with pytest.raises(ValueError, match="needs exactly one of recipe"):
        reproduce.load_registry(path)


def test_the_shipped_registry_uses_the_course_numbering_and_existing_recipes_and_checks():
    checks = reproduce.load_module(ROOT / "scripts" / "course_checks.py", "checks").CHECKS
    entries = reproduce.load_registry(ROOT / "scripts" / "course_experiments.yaml")
    missing = [e["recipe"] for e in entries if "recipe" in e and not (ROOT / e["recipe"]).is_file()]
    assert not missing, missing
    assert not [e["check"] for e in entries if "check" in e and e["check"] not in checks]
    unnumbered = [e["lecture"] for e in entries
                  if not re.match(r"\d\d ", e["lecture"]) and "(book " not in e["lecture"]]  # fmt: skip
    assert not unnumbered, unnumbered
    lectures = {e["id"]: e["lecture"][:2] for e in entries}
    assert [lectures[k] for k in ("lenet", "alexnet", "vgg", "nin", "googlenet", "rnn_scratch", "bahdanau")] == [
        "23", "24", "25", "26", "27", "55", "66"]  # fmt: skip
    assert {"11", "19", "34", "36", "37", "42", "49", "59", "63", "64", "69", "70"} <= set(lectures.values())


@pytest.mark.parametrize("check", ["anchor_boxes", "anchor_labels", "anchor_nms"])
def test_the_course_anchor_tensors_are_reproduced_exactly(check):
    checks = reproduce.load_module(ROOT / "scripts" / "course_checks.py", "checks")
    assert checks.CHECKS[check]({}, {})["value"] == 0
    assert checks.differ([1.404], [1.40], sig=3) == 0 and checks.differ([1.41], [1.40], sig=3) == 1
    assert checks.differ([3e-7], [4.17e-06], sig=3) == 0  # float noise around 0 matches


def test_ours_is_read_from_metrics_json_or_the_last_logged_value(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"test": {"test/acc": 0.81}}))
    (tmp_path / "metrics.csv").write_text("epoch,step,train/ppl,val/ppl\n0,9,3.5,\n0,9,,4.0\n1,19,1.25,\n")
    assert reproduce.read_metric(tmp_path, "test/acc") == 0.81
    assert reproduce.read_metric(tmp_path, "train/ppl") == 1.25  # the last epoch's, not the best
    assert reproduce.read_metric(tmp_path, "train/ppl", "mean") == pytest.approx(2.375)  # over the run's epochs
    assert reproduce.read_curves(tmp_path) == {"train/ppl": ([1, 2], [3.5, 1.25]), "val/ppl": ([1], [4.0])}
    with pytest.raises(ValueError, match="no test/bleu"):
        reproduce.read_metric(tmp_path, "test/bleu")
    with pytest.raises(ValueError, match="train/loss was never logged"):
        reproduce.read_metric(tmp_path, "train/loss")


def test_a_cache_in_the_older_flat_layout_becomes_seed_0(tmp_path):
    path = tmp_path / "REPRODUCTION.json"
    path.write_text(json.dumps({"lenet": {"key": "k", "ours": 0.81, "wall_s": 35.0, "shortened": []},
                                "fcn_voc": {"key": "f", "skipped": "needs data: VOCdevkit"}}))  # fmt: skip
    cache = reproduce.load_cache(path)
    assert cache["ours"]["lenet"]["seeds"] == {"0": {"value": 0.81, "wall_s": 35.0}}
    assert cache["ours"]["fcn_voc"] == {"key": "f", "skipped": "needs data: VOCdevkit", "seeds": {}}
    assert cache["course"] == {}


def test_a_comment_in_the_recipe_leaves_its_results_current(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE)
    entry = {"id": "tiny", "recipe": str(recipe), "metric": "val/loss", "data": None}
    key = reproduce.fingerprint(entry)
    recipe.write_text("# The course's linear regression (lecture 08)\n" + RECIPE)
    assert reproduce.fingerprint(entry) == key
    recipe.write_text(RECIPE.replace("max_epochs: 3", "max_epochs: 4"))
    assert reproduce.fingerprint(entry) != key


def test_a_rerun_course_side_file_replaces_the_cached_seed(tmp_path):
    entries = [{"id": "tiny", "metric": "val/loss"}]
    folder = tmp_path / "course_here"
    folder.mkdir()
    (folder / "tiny-0.json").write_text(json.dumps({"value": 4.6, "wall_s": 1.0, "curve": [5.0, 4.6]}))
    cache = {"ours": {}, "course": {}}
    assert reproduce.import_course_results(entries, cache, folder) == 1
    assert reproduce.import_course_results(entries, cache, folder) == 0  # current: nothing taken
    (folder / "tiny-0.json").write_text(json.dumps({"value": 6.5, "wall_s": 1.0, "curve": [7.0, 6.5]}))
    assert reproduce.import_course_results(entries, cache, folder) == 1
    assert cache["course"]["tiny"]["seeds"]["0"]["value"] == 6.5


def _write_fashion(folder: Path, n_train: int, n_test: int = 4) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))


def _write_cifar_pickles(root: Path, n: int = 4) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)  # rows: red, green, blue planes
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": list(range(n)), "data": images,
                         "filenames": [f"{i}.png" for i in range(n)]}, f, protocol=2)  # fmt: skip


def test_gpu_rows_dry_run_on_the_cpu(tmp_path, monkeypatch):
    """scripts/gpu_rows.sh's rows, one batch of 2 per split and epoch, with the GPU options (bf16,
    channels-last, resize on the device) on this CPU: every row that one device can run runs."""
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    data = tmp_path / "data"
    _write_fashion(data / "fashion_mnist", n_train=5004)  # the recipes hold out 5,000 for validation
    _write_cifar_pickles(data / "cifar10")
    out = tmp_path / "docs" / "REPRODUCTION.md"
    cache = reproduce.main(["--gpu", "--in_process", "--max_batches", "1", "--budget", "1", "--workers", "0",
                            "--seeds", "1", "--data_root", str(data), "--out", str(out),
                            "--runs", str(tmp_path / "runs")])  # fmt: skip
    ours = cache["ours"]
    ran = {k for k, r in ours.items() if r.get("seeds", {}).get("0", {}).get("value") is not None}
    assert ran == {"alexnet", "vgg", "nin", "googlenet", "resnet18", "densenet", "multi_gpu_1", "augment_cifar10"}, {
        k: r.get("error") or r.get("skipped") for k, r in ours.items()}  # fmt: skip
    assert "needs 2 GPUs" in ours["multi_gpu_2"]["skipped"] and "needs data" in ours["fcn_voc"]["skipped"]
    command = " ".join(reproduce.plan(
        next(e for e in reproduce.load_registry(ROOT / "scripts" / "course_experiments.yaml") if e["id"] == "alexnet"),
        reproduce.argparse.Namespace(data_root=str(data), budget=None, max_batches=None, gpu=True, workers=8,
                                     gpu_rows_on_cpu=False), True)[0])  # fmt: skip
    assert "--trainer.precision bf16-mixed" in command and "--data.init_args.resize_on_device true" in command
    assert "--data.init_args.num_workers 8" in command


def test_the_course_side_module_loads_as_reproduce_loads_it():
    """reproduce.py reads the course side's rows from scripts/course_side.py (its dataclasses need
    the module registered while it runs), without the d2l package."""
    rows = reproduce.load_module(ROOT / "scripts" / "course_side.py", "--course_module").ROWS
    assert {"conv_edge", "lenet", "seq2seq"} <= set(rows)
