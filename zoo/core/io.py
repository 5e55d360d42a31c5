"""Files a user keeps (metrics, configs, submissions, checkpoints) are written atomically:
to a temporary file in the same folder, flushed, then renamed over the target, so a crash
leaves either the old file or the new one, never half of one; a failed write (a full disk)
removes the temporary file and its error names the target. The file gets the permissions a
plain ``open(path, "w")`` would give it (``0o666`` less the umask), so a teammate or a
container user can read what a run wrote. Recipes are read as plain YAML values, naming the
file and the place when it is not UTF-8 or not YAML; a member of a folder or zip archive (the
course's pretrained files) is read naming the archive when it is damaged."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from zoo.core.errors import ConfigError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """``with atomic_write(p) as f: f.write(...)``: ``p`` changes only if the block succeeds."""
    path = Path(path)
    if path.is_dir():  # os.replace would fail only after the whole file was written
        raise IsADirectoryError(f"{path} is a folder; expected a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # O_EXCL: a new file of our own; mode 0o666 lets the OS apply the umask, as open() does
    # (tempfile.mkstemp would make it 0o600, unreadable to anyone else)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None and e.filename is None:
            e.filename = str(path)  # a full disk fails in write() or fsync(), whose error names no file
        raise


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``matplotlib.pyplot.subplots`` on the Agg backend (pictures for files, never a window: the
    commands run on servers and in data loader workers), for ``save_figure``."""
    import matplotlib  # here: matplotlib takes a second to import, and most commands draw nothing

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """A matplotlib figure as a PNG, written atomically, then closed (its memory freed)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def write_json(path: str | os.PathLike, obj: Any, sort_keys: bool = False) -> Path:
    """``obj`` as JSON at ``path`` (one space of indent, a final line end), written atomically;
    NaN is kept as ``NaN``, which Python's json reads back: a diverged metric stays visible."""
    with atomic_write(path) as f:
        json.dump(obj, f, indent=1, sort_keys=sort_keys)
        f.write("\n")
    return Path(path)


def read_yaml(path: str | os.PathLike) -> Any:
    """The plain values of a YAML file (``yaml.safe_load``: never Python objects)."""
    try:
        with open(path, "rb") as f:  # bytes, so that yaml names the file in its errors
            return yaml.safe_load(f)
    except yaml.reader.ReaderError as e:
        raise ConfigError(f"{path}: not UTF-8 text (offset {e.position}: {e.reason}); save it as UTF-8") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({e.problem or e.context})") from None


def read_member(path: str | os.PathLike, name: str) -> bytes:
    """The bytes of the file ``name`` in the folder or zip archive ``path`` (in a zip, at any
    depth, as the course's ``bert.small.torch.zip`` keeps ``bert.small.torch/vocab.json``)."""
    path = Path(path)
    if path.is_dir():
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path}: no {name} in this folder")
        return (path / name).read_bytes()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file or folder")
    try:
        with zipfile.ZipFile(path) as z:
            members = [n for n in z.namelist() if Path(n).name == name]
            if len(members) != 1:
                raise ConfigError(f"{path}: expected one {name} in the zip archive, found {len(members)}")
            return z.read(members[0])
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise ConfigError(f"{path}: not a readable zip archive ({e}): truncated or another format") from None
