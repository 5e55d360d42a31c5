"""zoo compare_optimizers: one zoo.fit run per recipe, one PNG with every curve, and a table."""

from pathlib import Path

import pytest

from zoo.cli import compare_optimizers


def _recipe(path: Path, optimizer: str, lr: float) -> str:
    path.write_text(f"""seed_everything: 0
trainer: {{max_epochs: 2}}
model:
  class_path: zoo.tasks.Regression
  init_args: {{arch: linear, init: normal, loss: half_mse, optimizer: {optimizer}, lr: {lr}}}
data:
  class_path: datamodules.Airfoil
  init_args: {{batch_size: 10, num_rows: 40, download: false}}
""")
    return str(path)


def test_one_run_per_recipe_one_png_and_a_table(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = [[100.0 * i, i % 7, 0.1 + i % 3, 30 + i % 5, 0.01 * (i % 4), 120 + (i * 37) % 11] for i in range(45)]
    (data / "airfoil_self_noise.dat").write_text("".join("\t".join(map(str, r)) + "\r\n" for r in rows))
    recipes = [_recipe(tmp_path / "a_sgd.yaml", "sgd", 0.05), _recipe(tmp_path / "a_yogi.yaml", "yogi", 0.05)]
    out = tmp_path / "cmp" / "curves.png"
    curves = compare_optimizers.main([*recipes, "--out", str(out), "--every", "2", "--",
                                      "--data.init_args.data_dir", str(data)])  # fmt: skip
    assert [c.name for c in curves] == ["a_sgd", "a_yogi"]
    for c in curves:
        assert c.examples == [20.0, 40.0, 60.0, 80.0]  # every 2 batches of 10, over 2 epochs of 40 rows
        assert all(b > a for a, b in zip(c.seconds, c.seconds[1:]))
        assert c.loss[-1] < c.loss[0]  # each learns
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = out.with_suffix(".md").read_text()
    assert f"| a_yogi | {curves[1].loss[-1]:.4f} |" in table and "| a_sgd |" in table


def test_a_missing_recipe_is_refused_before_any_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml: no such recipe"):
        compare_optimizers.main([str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "x.png")])
