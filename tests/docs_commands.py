"""The shell commands of the user docs (README.md, docs/*.md, competitions/**/README.md), as a
user would type them: every line of a ```bash block, continuation lines joined, split at ``&&``
and ``;``, with its trailing comment. A comment holding ``needs: X`` (``gpu``, ``nodes``,
``docker``, ``d2l``, ``data``, ``weights``, ``hours``) marks a command that cannot run on a
CPU-only machine without the network and the course's package; tests/test_docs.py checks it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).parents[1]
NEEDS = {
    "gpu": "a CUDA GPU (or several)",
    "nodes": "several machines (torchrun, SLURM)",
    "docker": "a Docker engine and NVIDIA's container toolkit",
    "d2l": "the course's d2l 1.0.3 package installed beside the project (../shared/peers/README.md)",
    "data": "Kaggle's or VOC's files, which are not in ../shared/data",
    "weights": "ImageNet weights downloaded once by the user (docs/weights.md)",
    "hours": "hours of training: the whole reproduction table",
}


@dataclass
class Command:
    doc: str  # e.g. "README.md"
    line: int  # where the command starts in the doc (1-based)
    text: str  # as written, continuation lines joined, without the comment
    comment: str = ""
    needs: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, int, str]:
        return self.doc, self.line, self.text

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    def argv(self) -> list[str]:
        """The words, optional ``[...]`` groups kept (their options are checked too)."""
        return shlex.split(re.sub(r"(^|\s)\[(--[^\]]*)\]", r"\1\2", self.text))


def doc_files() -> list[Path]:
    docs, competitions = sorted((ROOT / "docs").glob("*.md")), sorted((ROOT / "competitions").glob("**/README.md"))
    return [ROOT / "README.md", *docs, *competitions]


def _split_comment(line: str) -> tuple[str, str]:
    """``cmd  # comment`` -> (cmd, comment): the first ``#`` outside quotes after a space."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def _split_chain(line: str) -> list[str]:
    """``a && b; c`` -> ``[a, b, c]``, splitting only outside quotes."""
    out, quote, start, i = [], None, 0, 0
    while i < len(line):
        ch = line[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif line.startswith("&&", i) or ch == ";":
            out.append(line[start:i].strip())
            i += 2 if ch == "&" else 1
            start = i
            continue
        i += 1
    return [*out, line[start:].strip()]


def commands(path: Path) -> list[Command]:
    """The commands of one doc, in order."""
    out: list[Command] = []
    lines = path.read_text().splitlines()
    in_shell = in_other = False
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("```"):
            if in_shell or in_other:
                in_shell = in_other = False
            elif stripped in ("```bash", "```sh", "```shell"):
                in_shell = True
            else:
                in_other = True
            i += 1
            continue
        if in_shell and stripped and not stripped.startswith("#"):
            start, parts, comments = i, [], []
            while True:
                body, comment = _split_comment(lines[i].strip())
                comments.append(comment)
                if body.endswith("\\") and i + 1 < len(lines):
                    parts.append(body[:-1].strip())
                    i += 1
                    continue
                parts.append(body)
                break
            comment = " ".join(c for c in comments if c)
            marks = re.findall(r"needs: ([a-z0-9]+(?:, [a-z0-9]+)*)", comment)
            needs = [n for group in marks for n in group.split(", ")]
            for text in _split_chain(" ".join(parts)):
                if text:
                    out.append(Command(path.relative_to(ROOT).as_posix(), start + 1, text, comment, needs))
        i += 1
    return out


def all_commands() -> list[Command]:
    return [c for path in doc_files() for c in commands(path)]
