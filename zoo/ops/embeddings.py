"""Pretrained word vectors (GloVe, fastText) read from a local text file: the course's
``TokenEmbedding`` (book section 14.7, "word similarity and analogy"), used to start the NLI
models' embedding tables from GloVe.

The file holds one word a line, ``token v1 v2 ... vd`` separated by single spaces (GloVe's
``glove.6B.100d.txt``, the course's ``vec.txt``, fastText's ``.vec``, whose first line is a
``count dim`` header and is skipped). It may be gzipped (``.gz``) or inside a zip (``.zip``
holding one text file, as the course's ``glove.6B.100d.zip``). Only the vectors of the tokens
asked for are kept, so the 400,000 lines of GloVe cost a few seconds and little memory.
As in the course, a token not in the file gets the zero vector (its ``<unk>`` row).
"""

from __future__ import annotations

import gzip
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import torch

from zoo.core.errors import ConfigError
from zoo.core.problems import Problems

#: where to get the vectors the course's NLI chapter uses, for the missing-file message
GLOVE_HINT = (
    "get glove.6B.100d (the course's http://d2l-data.s3-accelerate.amazonaws.com/glove.6B.100d.zip, "
    "or glove.6B.zip from https://nlp.stanford.edu/projects/glove/, which holds glove.6B.100d.txt), "
    "put it at data/glove.6B.100d.txt (a .txt, .gz or .zip file) and pass that path"
)


@contextmanager
def _open_lines(path: Path) -> Iterator[IO[bytes]]:
    """The file's bytes: plain, gunzipped, or the one text file of a zip."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            yield f
    elif path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            members = [n for n in z.namelist() if not n.endswith("/") and not Path(n).name.startswith(".")]
            texts = [n for n in members if n.endswith((".txt", ".vec"))] or members
            if len(texts) != 1:
                raise ConfigError(
                    f"{path}: expected one vector file inside the zip, found {len(texts)} ({', '.join(texts[:6])}); "
                    "extract the one you want and pass the .txt"
                )
            with z.open(texts[0]) as f:
                yield f
    else:
        with open(path, "rb") as f:
            yield f


def load_token_embedding(path: str | Path, tokens: list[str]) -> tuple[torch.Tensor, int]:
    """The vectors of ``tokens`` from a GloVe/fastText text file.

    Returns ``(vectors, found)``: a float32 tensor of shape ``(len(tokens), dim)`` whose row ``i``
    is the file's vector for ``tokens[i]`` (zeros if the file lacks it; lookup is exact, so
    lower-case the vocabulary for GloVe), and how many of ``tokens`` were found.

    A missing file raises ``FileNotFoundError`` saying where to get GloVe; lines that do not hold
    a token and ``dim`` numbers raise one ``DataError`` naming the file and each bad line.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a folder, not a vector file" if path.is_dir() else "not found"
        raise FileNotFoundError(f"word vectors {path} {what}: {GLOVE_HINT}")
    rows: dict[str, list[int]] = {}
    for i, token in enumerate(tokens):
        rows.setdefault(token, []).append(i)
    where = str(path)
    vectors: dict[str, list[float]] = {}
    problems, dim, number = Problems(), None, 0
    bad: dict[str, list[int]] = {}  # kind of problem -> line numbers
    try:
        with _open_lines(path) as f:
            for number, raw in enumerate(f, start=1):
                fields = raw.decode("utf-8").rstrip().split(" ")  # fastText lines end in a space
                if number == 1 and len(fields) == 2 and all(x.isdigit() for x in fields):
                    dim = int(fields[1])  # fastText's "count dim" header
                    continue
                if fields == [""]:
                    continue  # a blank line (e.g. at the end)
                if dim is None:
                    dim = len(fields) - 1
                    if dim < 1:
                        bad.setdefault("expected a token and its numbers", []).append(number)
                        dim = None
                        continue
                if len(fields) != dim + 1:
                    bad.setdefault(f"expected a token and {dim} numbers", []).append(number)
                    continue
                token = fields[0]
                if token in rows and token not in vectors:  # the first of repeated tokens wins
                    try:
                        vectors[token] = [float(x) for x in fields[1:]]
                    except ValueError:
                        bad.setdefault("numbers that do not parse", []).append(number)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{where}: not UTF-8 text (line {number}: {e.reason}); save it as UTF-8") from None
    except (zipfile.BadZipFile, gzip.BadGzipFile, EOFError) as e:
        raise ConfigError(f"{where}: damaged archive ({e})") from None
    for kind, numbers in bad.items():
        problems.add_each(f"{kind} on line", numbers)
    if dim is None and not bad:
        problems.add("no vectors: expected lines of a token and its numbers separated by spaces")
    problems.raise_if_any(where)
    out = torch.zeros(len(tokens), dim)
    for token, vec in vectors.items():
        out[rows[token]] = torch.tensor(vec)
    return out, sum(len(rows[t]) for t in vectors)
