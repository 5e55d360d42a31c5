"""scripts/reproduce.py on a registry of tiny fake experiments: a real zoo.fit run, shortened and
marked; a row whose data is missing and one that needs a GPU, each with its command; the cache."""

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

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


def _registry(tmp_path: Path) -> Path:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE)
    rows = [
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


def test_generator_runs_marks_skips_and_caches(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    calls = []
    real_run = subprocess.run

    def counted(cmd, **kw):
        if "zoo.fit" in cmd:
            calls.append(cmd)
        return real_run(cmd, **kw)

    monkeypatch.setattr(reproduce.subprocess, "run", counted)
    registry, out = _registry(tmp_path), tmp_path / "docs" / "REPRO.md"
    args = ["--registry", str(registry), "--out", str(out), "--runs", str(tmp_path / "runs"),
            "--data_root", str(tmp_path / "data"), "--budget", "1"]  # fmt: skip
    cache = reproduce.main(args)
    assert len(calls) == 1  # only the row that can run here
    row = cache["tiny_line"]
    assert row["shortened"] == ["1 of 3 epochs"] and "error" not in row, row
    csv_rows = (tmp_path / "runs" / "tiny_line" / "version_0" / "metrics.csv").read_text().splitlines()
    loss = [r.split(",") for r in csv_rows]
    col = loss[0].index("val/loss")
    last = [r[col] for r in loss[1:] if r[col]][-1]
    assert row["ours"] == pytest.approx(0.5 * float(last))  # the last val/loss, on the course's scale
    assert "needs data: not_here" in cache["tiny_data"]["skipped"]
    assert "--data.init_args.data_dir" in cache["tiny_data"]["command"]
    assert "needs a GPU" in cache["tiny_gpu"]["skipped"]
    page = out.read_text()
    line = next(li for li in page.splitlines() if li.startswith("| 08 fake"))
    assert "**shortened**: 1 of 3 epochs" in line and "CPU cores" in line
    assert ("yes" if row["ours"] <= 1e-4 else "no") in line.split("|")[7]
    assert "python -m zoo.fit --config" in next(li for li in page.splitlines() if li.startswith("| 09 fake"))

    # a rerun runs nothing that is current; a changed recipe reruns its row
    reproduce.main(args)
    assert len(calls) == 1
    Path(registry.parent / "tiny.yaml").write_text(RECIPE.replace("lr: 0.1", "lr: 0.05"))
    reproduce.main([*args, "--only", "tiny_*"])
    assert len(calls) == 2


def test_a_bad_registry_is_one_clear_error(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "- {id: a, lecture: x, recipe: r.yaml, setting: s, course: 1, metric: m, better: more, data: null}\n"
    )
    with pytest.raises(ValueError, match=r"r.yaml: entry 1 \(a\): better must be higher or lower"):
        reproduce.load_registry(path)
    path.write_text("- {id: a, lecture: x}\n")
    with pytest.raises(ValueError, match="missing recipe, setting, course, metric, better, data"):
        reproduce.load_registry(path)


def test_the_shipped_registry_names_existing_recipes():
    entries = reproduce.load_registry(ROOT / "scripts" / "course_experiments.yaml")
    missing = [e["recipe"] for e in entries if not (ROOT / e["recipe"]).is_file()]
    assert not missing, missing


def test_ours_against_a_number_or_a_range_at_the_printed_precision():
    loss = {"better": "lower", "course": [0.243, 0.245]}
    assert reproduce.as_good(loss, 0.2454) == "yes"  # 0.245 as printed: within the range
    assert reproduce.as_good(loss, 0.2456) == "no"
    acc = {"better": "higher", "course": 0.779}
    assert reproduce.as_good(acc, 0.7786) == "yes" and reproduce.as_good(acc, 0.7784) == "no"
    assert reproduce.as_good({"better": "higher", "course": None}, 0.9) == "-"
    assert reproduce.fmt([0.243, 0.245]) == "0.243-0.245" and reproduce.fmt(5e-05) == "5.00e-05"


def test_ours_is_read_from_metrics_json_or_the_last_logged_value(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"test": {"test/acc": 0.81}}))
    (tmp_path / "metrics.csv").write_text("epoch,step,train/ppl,val/ppl\n0,9,3.5,\n0,9,,4.0\n1,19,1.25,\n")
    assert reproduce.read_ours(tmp_path, "test/acc") == 0.81
    assert reproduce.read_ours(tmp_path, "train/ppl") == 1.25  # the last epoch's, not the best
    with pytest.raises(ValueError, match="no test/bleu"):
        reproduce.read_ours(tmp_path, "test/bleu")
    with pytest.raises(ValueError, match="train/loss was never logged"):
        reproduce.read_ours(tmp_path, "train/loss")
