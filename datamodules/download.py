"""Downloading and unpacking data sets safely.

Written here rather than taken from ``torchvision.datasets.utils`` because that helper writes
straight to the final file name (an interrupted download would later pass for a whole one)
and extracts archives without refusing ``..`` or absolute member paths.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
import zipfile
from pathlib import Path

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
        raise ValueError(f"download({url!r}): give sha256 or md5; a file that cannot be verified is not used")
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
    components or links pointing outside are refused before anything is written."""
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                _check_inside(root, name, archive)
            z.extractall(target)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                _check_inside(root, m.name, archive)
                if m.issym():  # relative to the link's folder
                    _check_inside(root, str(Path(m.name).parent / m.linkname), archive)
                elif m.islnk():  # relative to the archive's root
                    _check_inside(root, m.linkname, archive)
            t.extractall(target, filter="data")
    else:
        raise ValueError(f"{archive} is neither a zip nor a tar archive")
    return target


def _check_inside(root: Path, member: str, archive: Path) -> None:
    if os.path.isabs(member) or not (root / member).resolve().is_relative_to(root):
        raise ValueError(f"refusing to extract {member!r} from {archive}: it points outside {root}")
