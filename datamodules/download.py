"""Finding, downloading and unpacking data sets: the one policy every data module follows.

``find_data`` looks in the user's folder (and its known sub-layouts), then in a system-wide copy
(Debian's ``dataset-fashion-mnist``), then fetches with a checksum; otherwise it raises one
error naming every place it looked and how to get the files. It prints one line saying where
the data came from, so a fallback is never silent, and refuses a folder that holds only part of
a data set (or is a file) rather than quietly reading another copy.

``download`` and ``extract`` are written here rather than taken from ``torchvision.datasets.utils``
because that helper writes straight to the final file name (an interrupted download would later
pass for a whole one) and extracts archives without refusing ``..`` or absolute member paths.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only

from zoo.core.errors import ConfigError

CHUNK = 1 << 20


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, md5: str | None = None) -> Path:
    """Fetch ``url`` to ``dest`` through ``dest.part``; verify, then rename. An existing
    ``dest`` that verifies is kept; a ``.part`` left by an earlier failure is never used.
    A checksum (``sha256`` or ``md5``) is required: no unverified download is ever used."""
    if not (sha256 or md5):
        raise ConfigError(f"download({url!r}): give sha256 or md5; a file that cannot be verified is not used")
    dest = Path(dest)
    if dest.is_file() and _verified(dest, sha256, md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(part, "wb") as f:
            shutil.copyfileobj(r, f, CHUNK)
            expected = r.headers.get("Content-Length") if hasattr(r, "headers") else None
        # http.client returns a body cut short by a dropped connection without an error
        if expected is not None and part.stat().st_size != int(expected):
            raise OSError(f"incomplete download from {url}: {part.stat().st_size} of {expected} bytes")
        if not _verified(part, sha256, md5):
            raise OSError(f"checksum mismatch for {url}: the downloaded file is not the expected one")
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


def _verified(path: Path, sha256: str | None, md5: str | None) -> bool:
    if sha256 and file_digest(path, "sha256") != sha256:
        return False
    return not (md5 and file_digest(path, "md5") != md5)


def extract(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Unpack a zip or tar archive inside ``target``; members with absolute paths, ``..``
    components or links pointing outside are refused before anything is written. Members are
    unpacked into a temporary folder first and moved into place only once all of them are out,
    so a damaged archive leaves nothing behind."""
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    is_zip = zipfile.is_zipfile(archive)
    if not is_zip and not tarfile.is_tarfile(archive):
        raise ConfigError(f"{archive} is neither a zip nor a tar archive")
    staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=target))
    try:
        if is_zip:
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    _check_inside(root, name, archive)
                z.extractall(staging)
        else:
            with tarfile.open(archive) as t:
                for m in t.getmembers():
                    _check_inside(root, m.name, archive)
                    if m.issym():  # relative to the link's folder
                        _check_inside(root, str(Path(m.name).parent / m.linkname), archive)
                    elif m.islnk():  # relative to the archive's root
                        _check_inside(root, m.linkname, archive)
                t.extractall(staging, filter="data")
        _move_tree(staging, target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as e:
        raise ConfigError(f"{archive}: damaged archive ({e}); nothing was extracted") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _move_tree(src: Path, dest: Path) -> None:
    """Move ``src``'s content into ``dest``, merging with folders already there."""
    for entry in src.iterdir():
        to = dest / entry.name
        if entry.is_dir() and not entry.is_symlink() and to.is_dir():
            _move_tree(entry, to)
        else:
            os.replace(entry, to)


def _check_inside(root: Path, member: str, archive: Path) -> None:
    if os.path.isabs(member) or not (root / member).resolve().is_relative_to(root):
        raise ConfigError(f"refusing to extract {member!r} from {archive}: it points outside {root}")


# -- finding a data set ---------------------------------------------------------------------
#: role -> the names a file may have; a name ending in ``/`` is a folder
Files = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Found:
    """Where a data set was found: the folder, each role's path, and which kind of place it was
    (``given`` folder, ``system`` copy, ``downloaded``)."""

    folder: Path
    paths: dict[str, Path]
    source: str


def _resolve(folder: Path, files: Files) -> dict[str, Path]:
    """The roles of ``files`` present in ``folder``, each with the first name that exists."""
    found = {}
    for role, names in files.items():
        for name in names:
            path = folder / name.rstrip("/")
            if path.is_dir() if name.endswith("/") else path.is_file():
                found[role] = path
                break
    return found


def _first_whole(places: Sequence[tuple[Path, Files]]) -> tuple[Path, dict[str, Path]] | None:
    for folder, files in places:
        paths = _resolve(folder, files)
        if len(paths) == len(files):
            return folder, paths
    return None


def _names(files: Files) -> str:
    return ", ".join(names[0] for names in files.values())


def find_data(
    what: str,
    places: Sequence[tuple[Path, Files]],
    *,
    system: Sequence[tuple[Path, Files]] = (),
    fetch: Callable[[], None] | None = None,
    source: str = "",
    no_fetch: str = "no download source is known",
    how: str = "",
) -> Found:
    """Find data set ``what`` by the one policy of the data modules.

    Args:
        places: the user's folder and its known sub-layouts, each with the files that make a
            whole copy there; the first whole one is used. ``places[0][0]`` is the folder the
            user named: it may not be a file, and no place of it may hold only part of a set.
        system: system-wide copies, tried after the user's places.
        fetch: downloads (checksummed) into one of ``places``; ``None`` when not allowed.
        source: where ``fetch`` downloads from, for the messages.
        no_fetch: why there is no ``fetch`` (e.g. ``download=False``), for the error.
        how: how to get the files, appended to the error.
    """
    given = places[0][0]
    if given.exists() and not given.is_dir():
        raise NotADirectoryError(
            f"{what}: data_dir {given} is a file; pass the folder that holds {_names(places[0][1])}"
        )
    whole = _first_whole(places)
    if whole:
        return _found(what, *whole, "given")
    for folder, files in places:  # part of a set: refuse rather than read another copy
        paths = _resolve(folder, files)
        if any(path.is_file() for path in paths.values()):  # a folder alone may be another set's
            missing = [names[0] for role, names in files.items() if role not in paths]
            raise FileNotFoundError(
                f"{what}: {folder} holds only part of the data set: missing {', '.join(missing)}. "
                f"Add the missing files or point data_dir at a whole copy. {how}".strip()
            )
    whole = _first_whole(system)
    if whole:
        return _found(what, *whole, "system", f"none in {given}")
    reason = no_fetch
    if fetch is not None:
        try:
            fetch()
            whole = _first_whole(places)
            if whole:
                return _found(what, *whole, "downloaded", source)
            reason = f"the download from {source} did not hold {_names(places[0][1])}"
        except OSError as e:
            reason = f"the download from {source} failed ({e})"
    looked = ", ".join(dict.fromkeys(str(folder) for folder, _ in (*places, *system)))
    need = " (or ".join(dict.fromkeys(_names(files) for _, files in places))
    need += ")" * need.count(" (or ")
    raise FileNotFoundError(f"{what} not found: need {need} in one of: {looked}; {reason}. {how}".strip())


def _found(what: str, folder: Path, paths: dict[str, Path], kind: str, source: str = "") -> Found:
    note = {"given": "", "system": f" (the system-wide copy: {source})", "downloaded": f" (downloaded from {source})"}
    say(f"{what}: reading {folder}{note[kind]}")
    return Found(folder, paths, kind)


_said: set[str] = set()


@rank_zero_only
def say(line: str) -> None:
    """Print ``line`` once per process (``prepare_data`` and ``setup`` both look the data up)."""
    if line not in _said:
        _said.add(line)
        print(line, file=sys.stderr, flush=True)
