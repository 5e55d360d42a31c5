"""The Dockerfile installs the project as the README does (no Docker engine here to build it).

What can be checked without an engine is checked: the project is installed by the README's
commands, after torch and torchvision pinned to the versions the tests run with; the base image
is NVIDIA's CUDA image of the CUDA version that torch wheel is built for; the entry point is the
README's command; every file the install needs is copied and not excluded by .dockerignore,
credentials are excluded, and the build context those COPY lines make really is an installable
project.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import torch
import torchvision

ROOT = Path(__file__).parents[1]


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1]) for row in rows]


def _commands(shell: str) -> list[str]:
    """The single commands of a shell line joined by ``&&`` or ``;``."""
    return [" ".join(shlex.split(c)) for c in re.split(r"&&|;", shell) if c.strip()]


def _readme_block(marker: str) -> str:
    readme = (ROOT / "README.md").read_text()
    m = re.search(rf"<!-- {marker} -->\s*```(?:bash|sh)?\n(.*?)```", readme, re.S)
    assert m, f"README.md has no ```bash block after <!-- {marker} -->"
    return m.group(1)


def _installs(commands: list[str]) -> list[str]:
    return [c for c in commands if re.match(r"(python3? -m )?pip3? install", c)]


def _args() -> dict[str, str]:
    return dict(arg.split("=", 1) for kind, arg in _instructions() if kind == "ARG" and "=" in arg)


def test_install_steps_are_the_readmes_after_the_tested_torch():
    readme = _commands(_readme_block("main-command").replace("\n", " "))
    docker = _installs([c for kind, arg in _instructions() if kind == "RUN" for c in _commands(arg)])
    assert _installs(readme) and docker[-len(_installs(readme)) :] == _installs(readme)
    pins = docker[: -len(_installs(readme))]
    assert pins == ["pip install torch==${TORCH_VERSION} torchvision==${TORCHVISION_VERSION}"]
    args = _args()
    assert args["TORCH_VERSION"] == torch.__version__.split("+")[0]  # the torch these tests run on
    assert args["TORCHVISION_VERSION"] == torchvision.__version__.split("+")[0]


def test_entry_point_is_the_readmes_command_and_the_base_matches_torchs_cuda():
    inst = _instructions()
    entry = next(arg for kind, arg in inst if kind == "ENTRYPOINT")
    assert eval(entry) == ["python", "-m", "zoo.fit"]  # exec form, so signals reach Python
    readme = _commands(_readme_block("main-command").replace("\n", " "))
    assert any(c.startswith("python -m zoo.fit --config configs/") for c in readme)
    base = re.fullmatch(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-base-ubuntu[\d.]+", _args()["BASE_IMAGE"])
    assert base, _args()["BASE_IMAGE"]
    wheel_cuda = torch.__version__.split("+cu")[-1] if "+cu" in torch.__version__ else None
    if wheel_cuda:  # a CUDA build of torch (e.g. 2.14.1+cu130): the image's CUDA is the wheel's
        assert base.group(1) + base.group(2) == wheel_cuda
    assert next(arg for kind, arg in inst if kind == "FROM") == "${BASE_IMAGE}"


def _ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: a pattern matches the path or a folder above it; ``**/``
    matches at any depth."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pat in patterns:
        tails = [pat[3:]] if pat.startswith("**/") else []
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pat):
                return True
            names = ["/".join(prefix.split("/")[i:]) for i in range(prefix.count("/") + 1)]
            if any(fnmatch.fnmatchcase(n, t) for t in tails for n in names):
                return True
    return False


def _copied() -> list[str]:
    out = []
    for kind, arg in _instructions():
        if kind == "COPY":
            out += [s.rstrip("/") for s in arg.split()[:-1] if not s.startswith("--")]
    return out


def test_the_copies_cover_the_install_and_dockerignore_keeps_them_but_not_secrets():
    patterns, copied = _ignore_patterns(), _copied()
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python >= 3.11 only)
    readme = re.search(r'^readme\s*=\s*"([^"]+)"', pyproject, re.M).group(1)
    include = re.search(r"^include\s*=\s*\[([^\]]*)\]", pyproject, re.M).group(1)
    needed = {"pyproject.toml", readme, "configs"} | {p.rstrip("*") for p in re.findall(r'"([^"]+)"', include)}
    assert needed <= set(copied), f"not copied into the image: {needed - set(copied)}"
    for src in copied:
        assert (ROOT / src).exists(), f"COPY {src}: no such path in the repository"
        assert not _ignored(src, patterns), f".dockerignore excludes {src}, which the Dockerfile copies"
    for secret in (".env", ".netrc", "kaggle.json", "competitions/x/kaggle.json", ".kaggle/kaggle.json"):
        assert _ignored(secret, patterns), f".dockerignore lets {secret} into the image"
    for bulky in (".git", "runs/x/version_0/checkpoints/last.ckpt", "data/train.gz", "zoo/__pycache__/a.pyc"):
        assert _ignored(bulky, patterns)


def test_the_build_context_is_an_installable_project(tmp_path):
    """Lay out the files the COPY lines bring (minus .dockerignore's) and let pip build the
    editable install's metadata from them, offline and without dependencies."""
    patterns, ctx = _ignore_patterns(), tmp_path / "context"
    for src in _copied():
        paths = [ROOT / src] if (ROOT / src).is_file() else sorted((ROOT / src).rglob("*"))
        for p in paths:
            rel = p.relative_to(ROOT).as_posix()
            if p.is_file() and not _ignored(rel, patterns):
                (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, ctx / rel)
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index",
                          "--no-build-isolation", "--report", str(tmp_path / "report.json"), "-e", str(ctx)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "d2l-zoo" in (tmp_path / "report.json").read_text()
