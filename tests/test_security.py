"""Bad input and security: archives stay inside their folder, downloads are whole and
verified, foreign checkpoints cannot run code, keys stay out of files, and configuration
mistakes are one line."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
import torch

import datamodules.fashion_mnist as fashion_mnist
from datamodules.download import download, extract
from zoo.cli.fit import main
from zoo.run.faults import AtomicCheckpointIO
from zoo.run.folder import VERSION_ENV
from zoo.tasks import Classification

ROOT = Path(__file__).parents[1]
RECIPE = ROOT / "configs" / "lenet_fashion_mnist.yaml"


# -- archives -------------------------------------------------------------------------------
def _tar(path: Path, members: list[tuple[str, str, str | None]]) -> Path:
    """``(name, kind, link)`` members; kind is file, sym or hard."""
    with tarfile.open(path, "w:gz") as t:
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = 5
                t.addfile(info, io.BytesIO(b"hello"))
            else:
                info.type, info.linkname = (tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE), link
                t.addfile(info)
    return path


def _zip(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name in names:
            z.writestr(name, b"hello")
    return path


@pytest.mark.parametrize("members", [
    [("ok.txt", "file", None), ("../evil.txt", "file", None)],
    [("ok.txt", "file", None), ("/tmp/zoo-evil-absolute.txt", "file", None)],
    [("ok.txt", "file", None), ("a/link", "sym", "../../evil.txt")],
    [("ok.txt", "file", None), ("a/link", "sym", "/etc/passwd")],
    [("a/b/ok.txt", "file", None), ("a/b/hard", "hard", "../evil.txt")],  # hard links: from the root
])  # fmt: skip
def test_tar_members_outside_the_target_are_refused_before_anything_is_written(tmp_path, members):
    archive = _tar(tmp_path / "x.tar.gz", members)
    target = tmp_path / "deep" / "target"
    with pytest.raises(ValueError, match=r"refusing to extract .* it points outside"):
        extract(archive, target)
    assert list(target.iterdir()) == []  # checked first, so not even the good member was written
    assert not (tmp_path / "deep" / "evil.txt").exists() and not Path("/tmp/zoo-evil-absolute.txt").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "sub/../../evil.txt", "/tmp/zoo-evil-absolute.txt"])
def test_zip_members_outside_the_target_are_refused(tmp_path, name):
    target = tmp_path / "target"
    with pytest.raises(ValueError, match="refusing to extract"):
        extract(_zip(tmp_path / "x.zip", ["ok.txt", name]), target)
    assert list(target.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_good_archives_extract(tmp_path):
    extract(_zip(tmp_path / "x.zip", ["a/one.txt"]), tmp_path / "z")
    extract(_tar(tmp_path / "x.tgz", [("a/two.txt", "file", None), ("a/link", "sym", "two.txt")]), tmp_path / "t")
    assert (tmp_path / "z/a/one.txt").read_bytes() == b"hello"
    assert (tmp_path / "t/a/link").read_bytes() == b"hello"
    with pytest.raises(ValueError, match="neither a zip nor a tar"):
        extract(tmp_path / "z/a/one.txt", tmp_path / "n")


# -- downloads ------------------------------------------------------------------------------
PAYLOAD = os.urandom(200_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/whole`` sends the payload; ``/cut`` promises all of it and drops the connection
    half-way, as a broken network does."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD if self.path == "/whole" else PAYLOAD[: len(PAYLOAD) // 2])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verifies_and_renames(server, tmp_path):
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(PAYLOAD[:10])  # left by an earlier failure
    assert download(f"{server}/whole", dest, sha256=SHA).read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
    dest.write_bytes(b"damaged")  # a file that fails its checksum is fetched again
    assert download(f"{server}/whole", dest, sha256=SHA).read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    dest = tmp_path / "f.bin"
    with pytest.raises(OSError, match="checksum mismatch"):
        download(f"{server}/whole", dest, sha256="0" * 64)
    with pytest.raises(OSError, match="checksum mismatch"):
        download(f"{server}/whole", dest, md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_a_cut_download_never_stands_in_for_a_whole_one(server, tmp_path):
    dest = tmp_path / "f.bin"
    with pytest.raises(OSError, match=f"incomplete download .*: 100000 of {len(PAYLOAD)} bytes"):
        download(f"{server}/cut", dest, sha256=SHA)  # caught by its length, before any checksum
    assert list(tmp_path.iterdir()) == []


def test_download_without_a_checksum_is_refused(server, tmp_path):
    with pytest.raises(ValueError, match="give sha256 or md5"):
        download(f"{server}/whole", tmp_path / "f.bin")
    assert list(tmp_path.iterdir()) == []


def test_file_urls(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    assert download(src.as_uri(), tmp_path / "out" / "f.bin", sha256=SHA).read_bytes() == PAYLOAD


# -- checkpoints from elsewhere -------------------------------------------------------------
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))  # runs when unpickled without weights_only


def test_foreign_checkpoints_cannot_run_code(tmp_path, fashion_dir, monkeypatch):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "global_step": 0, "x": _Payload(marker)}, evil)
    with pytest.raises(ValueError, match="refused to load: it asks for posix.mkdir"):
        AtomicCheckpointIO().load_checkpoint(evil, weights_only=False)  # not honoured: the one safe loader
    with pytest.raises(Exception, match="Weights only load failed"):
        Classification.load_from_checkpoint(evil)
    monkeypatch.delenv(VERSION_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_:  # zoo.fit checks a resume through zoo.core.checkpoint
        main(_args(fashion_dir, tmp_path, "--ckpt_path", str(evil)), one_line_errors=True)
    assert str(exit_.value).startswith(f"error: {evil}: refused to load: it asks for posix.mkdir")
    assert not marker.exists()


# -- keys -----------------------------------------------------------------------------------
def _args(data_dir: Path, root: Path, *extra: str) -> list[str]:
    return ["--config", str(RECIPE), "--data.init_args.data_dir", str(data_dir),
            "--data.init_args.val_size", "60", "--data.init_args.batch_size", "64",
            "--data.init_args.download", "false", "--trainer.default_root_dir", str(root),
            "--trainer.enable_progress_bar", "false", "--trainer.max_epochs", "1", *extra]  # fmt: skip


def test_keys_never_reach_configs_logs_or_metrics(fashion_dir, tmp_path):
    secrets = {"WANDB_API_KEY": "wandbsecret0123456789abcdef0123456789abcd",
               "KAGGLE_KEY": "kagglesecret0123456789abcdef", "KAGGLE_USERNAME": "kaggleuser7f3a"}  # fmt: skip
    # a process of its own: wandb keeps process-wide state that would leak into other tests
    env = {k: v for k, v in os.environ.items() if k != VERSION_ENV}
    env.update(secrets, WANDB_MODE="offline", WANDB_SILENT="true")  # the key is set, but no network here
    command = [sys.executable, "-m", "zoo.fit", *_args(fashion_dir, tmp_path, "--name", "keys"), "--wandb", "true"]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    files = [p for p in (tmp_path / "keys").rglob("*") if p.is_file()]
    assert any(p.name == "metrics.json" for p in files) and any(p.suffix == ".wandb" for p in files)
    for secret in secrets.values():
        assert secret not in run.stdout + run.stderr
        leaks = [p for p in files if secret.encode() in p.read_bytes()]
        assert not leaks, f"{secret[:6]}... found in {leaks}"


# -- configuration mistakes -----------------------------------------------------------------
@pytest.mark.parametrize("extra, expected", [
    (["--model.init_args.arch", "lenet6"], "error: unknown model 'lenet6'; did you mean lenet"),
    (["--trainer.max_epochs", "many"], "error: --trainer.max_epochs: expected int, got many"),
    (["--model.init_args.lr", "fast"], "error: --model.init_args.lr: expected float, got fast"),
    (["--data.init_args.batchsize", "8"], "error: --data: Option 'batchsize' is not accepted"),
    (["--ckpt_path", "nowhere.ckpt"], "error: --ckpt_path nowhere.ckpt: no such checkpoint file"),
])  # fmt: skip
def test_config_errors_are_one_line(fashion_dir, tmp_path, extra, expected):
    with pytest.raises(SystemExit) as exit_:
        main(_args(fashion_dir, tmp_path, *extra), one_line_errors=True)
    message = str(exit_.value)
    assert message.startswith(expected) and "\n" not in message


def test_missing_data_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian-copy")
    with pytest.raises(SystemExit) as exit_:
        main(_args(tmp_path / "no-such-dir", tmp_path, "--name", "missing"), one_line_errors=True)
    message = str(exit_.value)
    assert message.startswith("error: Fashion-MNIST not found: need train-images-idx3-ubyte.gz")
    assert str(tmp_path / "no-such-dir") in message and "\n" not in message


def test_command_line_prints_one_line_not_a_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-m", "zoo.fit", "--config", str(RECIPE),
                          "--model.init_args.arch", "lenet6", "--trainer.default_root_dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: unknown model 'lenet6'")
