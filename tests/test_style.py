"""The house style is enforced, not hoped for: ruff (config in pyproject.toml) passes on the tree."""

import subprocess
import sys
from pathlib import Path


def test_ruff_clean():
    root = Path(__file__).parents[1]
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", str(root)],
                         capture_output=True, text=True, cwd=root)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
