"""scripts/course_side.py: the course's own code per reproduction row. On a tiny d2l-like package
written here: the CLI's JSON, the wrong --d2l_path line, seeding; the downloads pointed at local
files. On the real d2l 1.0.3 where it is installed: two cheap rows end to end."""

import importlib.util
import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("course_side", ROOT / "scripts" / "course_side.py")
course_side = importlib.util.module_from_spec(spec)
sys.modules["course_side"] = course_side  # its dataclass looks its module up there
spec.loader.exec_module(course_side)

# the few functions of d2l that the linear-regression row and course_book's import use
FAKE_TORCH = """
import torch
from torch import nn

def try_gpu(i=0):
    return torch.device("cpu")

class Decoder(nn.Module):
    pass

class AttentionDecoder(Decoder):
    pass

def synthetic_data(w, b, num_examples):
    X = torch.normal(0, 1, (num_examples, len(w)))
    y = X @ w + b
    return X, (y + torch.normal(0, 0.01, y.shape)).reshape(-1, 1)

def linreg(X, w, b):
    return X @ w + b

def squared_loss(y_hat, y):
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2

def sgd(params, lr, batch_size):
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad / batch_size
            p.grad.zero_()
"""


@pytest.fixture
def fake_d2l(tmp_path: Path) -> Path:
    package = tmp_path / "fake_d2l" / "d2l"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "1.0.3"\n')
    (package / "torch.py").write_text(FAKE_TORCH)
    return package.parent


@pytest.fixture
def isolated_imports():
    """Imports the run makes (the fake d2l, course_book, display stand-ins) are undone after."""
    modules, path = set(sys.modules), list(sys.path)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "course_side.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_cli_prints_the_row_as_json_and_writes_it(fake_d2l: Path, tmp_path: Path):
    out = tmp_path / "results"
    proc = _cli("--row", "linear_regression", "--seed", "3", "--d2l_path", str(fake_d2l),
                "--data_root", str(tmp_path), "--out", str(out), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # stdout holds the JSON alone: the course's prints go to stderr
    assert result["row"] == "linear_regression" and result["seed"] == 3
    assert 0 < result["value"] < 1e-3  # the noise floor 0.01^2 / 2 after 3 epochs
    assert result["curve"][-1] == result["value"] and result["curve_x"] == [1, 2, 3]
    assert result["curve"][0] >= result["curve"][-1]
    assert result["wall_s"] >= 0 and result["d2l"] == "1.0.3"
    assert json.loads((out / "linear_regression-3.json").read_text()) == result


def test_same_seed_same_value(fake_d2l: Path, tmp_path: Path, isolated_imports):
    def value(seed):
        return course_side.run("linear_regression", seed, tmp_path, d2l_path=fake_d2l, work_dir=tmp_path / "w")

    first, again, other = value(0), value(0), value(1)
    assert first["value"] == again["value"] and first["curve"] == again["curve"]
    assert other["value"] != first["value"]


def test_a_wrong_d2l_path_says_how_to_install(tmp_path: Path):
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit) as e:
        course_side.run_command(lambda: course_side.main(["--row", "lenet", "--d2l_path", str(missing)]))
    line = str(e.value)
    assert "\n" not in line and line.startswith(f"error: --d2l_path {missing}: no d2l package there")
    assert f"pip install --no-deps --target {missing} d2l==1.0.3 ipython matplotlib-inline traitlets" in line


def test_an_unknown_row_and_a_missing_data_folder_are_one_line(fake_d2l: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="--row 'lenet6': unknown row; expected one of linear_regression"):
        course_side.run("lenet6", 0, tmp_path, d2l_path=fake_d2l)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'fashion_mnist'}: row lenet needs this folder"):
        course_side.run("lenet", 0, tmp_path, d2l_path=fake_d2l)


def test_downloads_return_the_local_copies(tmp_path: Path):
    data = tmp_path / "data"
    (data / "airfoil").mkdir(parents=True)
    (data / "airfoil" / "airfoil_self_noise.dat").write_text("1\t2\n")
    d2l = types.SimpleNamespace()
    course_side._local_data(d2l, data, tmp_path / "work")
    assert d2l.download("airfoil") == str(data / "airfoil" / "airfoil_self_noise.dat")
    with pytest.raises(FileNotFoundError, match=f"{data / 'ptb' / 'ptb'}: the course's 'ptb' folder is missing"):
        d2l.download_extract("ptb")
    with pytest.raises(ValueError, match="'banana-detection', which has no local copy"):
        d2l.download_extract("banana-detection")


def test_recorder_keeps_what_animator_would_plot():
    board = course_side.Recorder(legend=["train loss", "test acc"])
    board.add(0.5, (1.0, None))
    board.add(1, (0.5, 0.8))
    assert board.line(0) == ([0.5, 1.0], [1.0, 0.5]) and board.line(1) == ([1.0], [0.8])


REAL = Path(os.environ.get("D2L_PATH", course_side.DEFAULT_D2L_PATH))


@pytest.mark.skipif(
    not (REAL / "d2l" / "torch.py").is_file(), reason=f"the course's d2l 1.0.3 is not installed at {REAL}"
)
def test_real_package_runs_cheap_rows_with_three_seeds(tmp_path: Path):
    rng = np.random.default_rng(0)
    (tmp_path / "airfoil").mkdir()
    np.savetxt(tmp_path / "airfoil" / "airfoil_self_noise.dat", rng.normal(size=(1503, 6)), delimiter="\t")
    out = tmp_path / "results"
    proc = _cli("--all", "--only", "airfoil_sgd", "linear_regression", "--out", str(out), "--d2l_path", str(REAL),
                "--data_root", str(tmp_path), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for row in ("airfoil_sgd", "linear_regression"):
        results = [json.loads((out / f"{row}-{seed}.json").read_text()) for seed in range(3)]
        assert all(math.isfinite(r["value"]) and r["curve"][-1] == r["value"] for r in results)
        assert len({r["value"] for r in results}) == 3  # three seeds, three runs
    assert len(results[0]["curve"]) == 3
    airfoil = json.loads((out / "airfoil_sgd-0.json").read_text())
    assert len(airfoil["curve"]) == 15 and airfoil["curve_x"][-1] == 2.0  # train_ch11 evaluates every 200 rows
