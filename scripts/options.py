"""What the benchmark scripts share on their command lines: the course's ``d2l`` package beside
ours (``--d2l_path``), the input files they read, and ``--dry_run`` (check both, run nothing)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

INSTALL_D2L = "pip install --no-deps --target {path} d2l==1.0.3 ipython matplotlib-inline traitlets"


def add_d2l_path(p: argparse.ArgumentParser, required: bool) -> None:
    when = "required" if required else "optional; without it only ours runs"
    p.add_argument("--d2l_path", required=required, metavar="DIR",
                   help=f"folder where the course's d2l 1.0.3 is installed ({INSTALL_D2L.format(path='DIR')}; "
                        f"../shared/peers/README.md); {when}")  # fmt: skip


def add_dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry_run", action="store_true", help="check the options and input files, then stop")


def use_d2l(path: str | None) -> None:
    """Put the d2l package installed in ``path`` first on ``sys.path``; a folder without it is
    one line saying how to install it there."""
    if path is None:
        return
    if not (Path(path) / "d2l" / "__init__.py").is_file():
        raise FileNotFoundError(f"--d2l_path {path}: no d2l package there (no {Path(path) / 'd2l' / '__init__.py'}); "
                                f"install it with {INSTALL_D2L.format(path=path)}")  # fmt: skip
    sys.path.insert(0, str(path))


def require(**files: str | Path) -> None:
    """Each ``option=path`` exists, else one line naming the option and the path."""
    for option, path in files.items():
        if not Path(path).exists():
            raise FileNotFoundError(f"--{option} {path}: no such file or folder")


def dry_run_done(what: str) -> None:
    print(f"dry run: {what}; options and inputs checked, nothing run")
