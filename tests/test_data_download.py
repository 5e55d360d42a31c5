"""The one data-finding policy (``datamodules.download.find_data``) and safe extraction: the
user's folder, then the system copy, then a checksummed fetch; one error naming every place;
one line saying where the data came from; an archive that fails half-way leaves nothing."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from datamodules.download import download, extract, find_data

FILES = {"a": ("a.txt",), "b": ("b.txt", "b.txt.gz")}


def _set(folder, names=("a.txt", "b.txt")):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_text(n)
    return folder


def test_given_folder_first_then_sub_layout_then_system(tmp_path, capsys):
    given, sub, system = tmp_path / "d", tmp_path / "d" / "sub", _set(tmp_path / "sys")
    places = [(given, FILES), (sub, FILES)]
    found = find_data("toy", places, system=[(system, FILES)])
    assert found.source == "system" and found.paths["b"] == system / "b.txt"
    assert f"toy: reading {system} (the system-wide copy: none in {given})" in capsys.readouterr().err
    _set(sub, ("a.txt", "b.txt.gz"))
    found = find_data("toy", places, system=[(system, FILES)])
    assert (found.folder, found.source, found.paths["b"].name) == (sub, "given", "b.txt.gz")
    assert capsys.readouterr().err == f"toy: reading {sub}\n"


def test_fetch_is_tried_last_and_the_error_names_every_place(tmp_path, capsys):
    given = tmp_path / "d"
    found = find_data("toy", [(given, FILES)], fetch=lambda: _set(given), source="http://mirror/")
    assert found.source == "downloaded" and "(downloaded from http://mirror/)" in capsys.readouterr().err

    def offline():
        raise OSError("no route to host")

    with pytest.raises(FileNotFoundError) as e:
        find_data("toy", [(tmp_path / "x", FILES), (tmp_path / "x" / "y", FILES)], system=[(tmp_path / "sys", FILES)],
                  fetch=offline, source="http://mirror/", how="Ask a friend.")  # fmt: skip
    msg = str(e.value)
    assert msg.startswith("toy not found: need a.txt, b.txt in one of: ")
    assert all(str(p) in msg for p in (tmp_path / "x", tmp_path / "x" / "y", tmp_path / "sys"))
    assert "the download from http://mirror/ failed (no route to host). Ask a friend." in msg


def test_part_of_a_set_or_a_file_is_refused_before_the_system_copy(tmp_path):
    system = [(_set(tmp_path / "sys"), FILES)]
    partial = _set(tmp_path / "d", ("b.txt",))
    with pytest.raises(FileNotFoundError, match=f"toy: {partial} holds only part of the data set: missing a.txt"):
        find_data("toy", [(partial, FILES)], system=system, fetch=lambda: pytest.fail("fetched over it"))
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match=f"toy: data_dir {tmp_path / 'f'} is a file"):
        find_data("toy", [(tmp_path / "f", FILES)], system=system)


def test_a_damaged_zip_leaves_no_partial_output(tmp_path):
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        z.writestr("top/one.txt", b"hello" * 10)
        z.writestr("top/two.txt", b"world" * 10)
    raw = bytearray(archive.read_bytes())
    raw[raw.find(b"world")] ^= 0xFF  # the second member's data no longer matches its CRC
    archive.write_bytes(bytes(raw))
    target = tmp_path / "target"
    (target / "top").mkdir(parents=True)
    (target / "top" / "kept.txt").write_text("mine")
    with pytest.raises(ValueError, match=f"{archive}: damaged archive .*CRC.*nothing was extracted"):
        extract(archive, target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == ["top", "top/kept.txt"]


def test_a_good_archive_merges_into_existing_folders(tmp_path):
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("top/one.txt", b"hello")
    (tmp_path / "t" / "top").mkdir(parents=True)
    (tmp_path / "t" / "top" / "kept.txt").write_text("mine")
    extract(download(archive.as_uri(), tmp_path / "dl" / "x.zip", sha256=hashlib.sha256(archive.read_bytes())
                     .hexdigest()), tmp_path / "t")  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "t").rglob("*")) == ["kept.txt", "one.txt", "top"]
