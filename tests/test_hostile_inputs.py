"""Hostile and degenerate inputs to the commands and data modules: class paths a recipe names,
files that are no checkpoint, images that declare more pixels than a machine holds, corpora
with nothing to learn from, options outside their range. Each is one line naming the file or
the option, before anything is decoded, built or written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from zoo.cli.show_augment import main as show_augment
from zoo.core.classes import resolve_class
from zoo.core.errors import ConfigError
from zoo.run.errors import run_command

ROOT = Path(__file__).parents[1]


def one_line(command, argv: list[str]) -> str:
    """The message ``command`` exits with through the shared boundary; it must be one line."""
    with pytest.raises(SystemExit) as exit_:
        run_command(lambda: command(argv))
    message = str(exit_.value)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


# -- class paths ------------------------------------------------------------------------------
def test_show_augment_builds_only_a_data_module(tmp_path):
    marker = tmp_path / "ran"
    config = tmp_path / "config.yaml"
    config.write_text(f"data:\n  class_path: subprocess.Popen\n  init_args: {{args: [touch, {marker}]}}\n")
    message = one_line(show_augment, ["--config", str(config), "--out", str(tmp_path / "a.png")])
    assert message.startswith(f"error: {config}: data.class_path is subprocess.Popen, not a ZooDataModule")
    config.write_text("data:\n  class_path: datamodules.NoSuchSet\n")
    message = one_line(show_augment, ["--config", str(config)])
    assert "data.class_path is datamodules.NoSuchSet, a class this zoo does not have" in message
    config.write_text("data:\n  class_path: datamodules.FashionMNIST\n  init_args: {colour: true}\n")
    message = one_line(show_augment, ["--config", str(config)])
    assert message.startswith(f"error: {config}: data.init_args: got an unexpected keyword argument 'colour'")
    assert not marker.exists() and not (tmp_path / "a.png").exists()


def test_a_checkpoints_class_is_imported_only_from_the_zoo(tmp_path):
    before = set(sys.modules)
    with pytest.raises(ConfigError, match="outside the zoo's packages"):
        resolve_class("antigravity.Fly", object, "x.ckpt: its task", zoo_only=True)
    assert "antigravity" not in set(sys.modules) - before  # refused before importing it
    with pytest.raises(ConfigError, match="not a Module"):
        resolve_class("zoo.core.errors.ConfigError", torch.nn.Module, "x.ckpt: its task", zoo_only=True)


# -- checkpoints that are no checkpoint ---------------------------------------------------------
#: 25 bytes on which torch's weights-only unpickler raises IndexError ("pop from empty list")
JUNK_25 = b".\x80a18pl.\x02.9l)g6p494\x803}\x028q"


def _ckpt_commands(tmp_path: Path, ckpt: Path) -> dict[str, tuple]:
    """Every command that reads a ``--ckpt_path``, with otherwise valid arguments."""
    from zoo.cli.detect import main as detect
    from zoo.cli.export import main as export
    from zoo.cli.fit import main as fit
    from zoo.cli.forecast import main as forecast
    from zoo.cli.generate import main as generate
    from zoo.cli.nli import main as nli
    from zoo.cli.predict import main as predict
    from zoo.cli.segment import main as segment
    from zoo.cli.similar import main as similar
    from zoo.cli.translate import main as translate

    image = tmp_path / "cat.png"
    image.write_bytes(_png(8, 8))
    c = str(ckpt)
    return {
        "translate": (translate, ["--ckpt_path", c, "hello"]),
        "predict": (predict, ["--ckpt_path", c, str(image)]),
        "export": (export, ["--ckpt_path", c, "--out", str(tmp_path / "m.onnx")]),
        "detect": (detect, [str(image), "--ckpt_path", c, "--out", str(tmp_path / "det")]),
        "segment": (segment, [str(image), "--ckpt_path", c, "--out", str(tmp_path / "seg")]),
        "nli": (nli, ["a cat", "an animal", "--ckpt_path", c]),
        "similar": (similar, ["--ckpt_path", c, "cat"]),
        "generate": (generate, ["--ckpt_path", c]),
        "forecast": (forecast, ["--ckpt_path", c, "--out", str(tmp_path / "f.png")]),
        "fit": (fit, ["--config", str(ROOT / "configs" / "sine_mlp.yaml"), "--ckpt_path", c,
                      "--trainer.default_root_dir", str(tmp_path / "runs")]),
    }  # fmt: skip


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_junk_and_folders_as_ckpt_path_are_one_line_in_every_command(tmp_path):
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(JUNK_25)
    folder = tmp_path / "run_folder"
    folder.mkdir()
    for name, (command, argv) in _ckpt_commands(tmp_path, junk).items():
        message = one_line(command, argv)
        assert f"{junk}: not a readable PyTorch checkpoint" in message, (name, message)
    for name, (command, argv) in _ckpt_commands(tmp_path, folder).items():
        message = one_line(command, argv)
        assert f"{folder}: a folder, expected a checkpoint file" in message, (name, message)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "m.onnx").exists()


# -- images that declare more pixels than a machine holds ---------------------------------------
def declaring_png(width: int, height: int) -> bytes:
    """A PNG of 8x8 pixels whose header declares ``width x height`` (CRC fixed, so it parses)."""
    import struct
    import zlib

    data = bytearray(_png(8, 8))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_an_image_declaring_400_megapixels_is_refused_from_its_header(tmp_path, monkeypatch):
    from zoo.core.images import image_size, read_pil, read_rgb
    from zoo.core.problems import DataError

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(declaring_png(20000, 20000))
    assert bomb.stat().st_size < 1000
    for read in (read_rgb, read_pil, image_size):
        with pytest.raises(
            DataError,
            match=r"bomb\.png: declares more than 178,956,970 pixels, more than the "
            r"89,478,485 pixels an image may have \(set ZOO_MAX_IMAGE_PIXELS",
        ):
            read(bomb)  # fmt: skip
    bomb.write_bytes(declaring_png(10000, 10000))  # between PIL's limit and twice it: the size is known
    with pytest.raises(DataError, match=r"bomb\.png: declares 10000x10000 pixels \(100 megapixels\)"):
        read_rgb(bomb)
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "100")  # a lower limit, and a higher one, by the variable
    small = tmp_path / "small.png"
    small.write_bytes(_png(10, 10))
    assert read_rgb(small).shape == (10, 10, 3)
    small.write_bytes(_png(11, 10))
    with pytest.raises(DataError, match=r"small\.png: declares 11x10 pixels"):
        read_rgb(small)
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "5e8")
    assert image_size(bomb) == (10000, 10000)
    monkeypatch.setenv("ZOO_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(DataError, match="ZOO_MAX_IMAGE_PIXELS: 'lots': expected a positive number"):
        read_rgb(small)


# -- degenerate text: empty, one word, every label dropped, no pairs --------------------------
def _error_of(build) -> str:
    from zoo.core.problems import DataError
    from zoo.run.errors import one_line as format_line

    with pytest.raises(DataError) as e:
        build().setup("fit")
    line = format_line(e.value)
    assert "\n" not in line
    return line


@pytest.mark.parametrize("text", ["", "cat\n", "\ufeffthe cat\r\n"])
def test_degenerate_corpora_name_the_file(tmp_path, text):
    import datamodules as D

    for f in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt", "timemachine.txt", "wiki.train.tokens",
              "wiki.valid.tokens", "wiki.test.tokens"):  # fmt: skip
        (tmp_path / f).write_text(text, encoding="utf-8")
    train = tmp_path / "ptb.train.txt"
    assert _error_of(lambda: D.PTBWord2Vec(str(tmp_path), download=False)).startswith(
        f"{train}: no word occurs at least min_freq=10 times"
    )
    assert (
        _error_of(lambda: D.PTBWord2Vec(str(tmp_path), min_freq=1, download=False)).startswith(
            f"{train} (train split): no two vocabulary words share a sentence"
        )
        if text
        else True
    )
    assert f"{train} (train split): " in _error_of(lambda: D.PennTreebank(data_dir=str(tmp_path), download=False))
    assert f"{tmp_path / 'timemachine.txt'} (train split): " in _error_of(
        lambda: D.TimeMachine(data_dir=str(tmp_path), download=False)
    )
    assert _error_of(lambda: D.WikiText2BERT(data_dir=str(tmp_path), download=False)).startswith(
        f"{tmp_path / 'wiki.train.tokens'} (train split): no sentence pairs")  # fmt: skip


def test_snli_and_fra_eng_without_examples_say_what_is_missing(tmp_path):
    import datamodules as D

    header = "gold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1\tsentence2\n"
    rows = {"empty": "", "dashes": header + "-\t( a )\t( b )\ta\tb\n" * 3}
    for name, body in rows.items():
        (tmp_path / name).mkdir()
        for s in ("train", "dev", "test"):
            (tmp_path / name / f"snli_1.0_{s}.txt").write_text(body)
    first = tmp_path / "empty" / "snli_1.0_train.txt"
    assert _error_of(lambda: D.SNLI(str(tmp_path / "empty"), download=False)) == f"{first}: empty file; expected " \
        "SNLI 1.0's .txt (tab-separated, with a header) or .jsonl"  # fmt: skip
    assert _error_of(lambda: D.SNLI(str(tmp_path / "dashes"), download=False)).startswith(
        f"{tmp_path / 'dashes' / 'snli_1.0_train.txt'}: no labelled examples: 3 rows, 3 of them dropped"
    )
    fra = tmp_path / "fra.txt"
    fra.write_text("")
    assert _error_of(lambda: D.FraEng(str(tmp_path))).startswith(f"{fra}: no sentence pairs (empty file)")
    fra.write_bytes("\ufeffGo.\tVa !\r\nHi.\tSalut !\r\n".encode())  # a BOM and Windows line ends
    data = D.FraEng(str(tmp_path), num_examples=1, val_size=1, test_size=0)
    assert data.splits()["train"] == [("go .", "va !")]  # the BOM is not part of the first word


# -- lines that keep their file ---------------------------------------------------------------
def test_translate_files_that_are_not_utf8_or_empty_are_named(tmp_path):
    from zoo.cli.translate import main as translate

    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(JUNK_25)
    latin1, empty = tmp_path / "latin1.txt", tmp_path / "empty.txt"
    latin1.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    empty.write_text("\n\n")
    assert one_line(translate, ["--ckpt_path", str(junk), "--file", str(latin1)]).startswith(
        f"error: {latin1}: not UTF-8 text (byte 0xe9 at offset 3); save it as UTF-8"
    )
    assert one_line(translate, ["--ckpt_path", str(junk), "--file", str(empty)]).startswith(
        f"error: --file {empty}: empty file; expected one sentence a line"
    )
    assert one_line(translate, ["--ckpt_path", str(junk), "hi", "--references_file", str(tmp_path)]).startswith(
        f"error: --references_file {tmp_path}: a folder, expected a file")  # fmt: skip
    import datamodules as D

    (tmp_path / "fra.txt").write_bytes("Go.\tVa !\nCaf\xe9.\tCaf\xe9 !\n".encode("latin-1"))
    assert _error_of(lambda: D.FraEng(str(tmp_path))).startswith(f"{tmp_path / 'fra.txt'}: not UTF-8 text")


def test_the_one_line_keeps_the_message_that_names_the_file_not_its_cause():
    """A message written for the user (a file's name, raised ``from`` a library error) is the
    line; jsonargparse's wrappers are followed to the constructor's error and its option."""
    from zoo.cli.fit import make_cli
    from zoo.run.errors import one_line as format_line

    def wrapped(outer: type[Exception], message: str) -> Exception:
        try:
            try:
                b"caf\xe9".decode()
            except UnicodeDecodeError as codec:
                raise outer(message) from codec
        except Exception as e:
            return e

    for outer in (ValueError, OSError, RuntimeError):
        assert format_line(wrapped(outer, "data/fra.txt: not UTF-8 text")) == "data/fra.txt: not UTF-8 text"
    with pytest.raises(Exception) as e:  # built from a recipe: jsonargparse wraps the constructor's error
        make_cli(["--config", str(ROOT / "configs" / "lenet_fashion_mnist.yaml"), "--model.init_args.arch",
                  "lenet6", "--data.init_args.download", "false"], exit_on_error=False)  # fmt: skip
    assert format_line(e.value).startswith("unknown model 'lenet6'; did you mean lenet")


def test_a_bug_keeps_its_traceback_and_a_mistake_is_one_line():
    """Only the zoo's own errors (and OSError, jsonargparse's, Lightning's misconfiguration) are a
    user's mistake; a ValueError or TypeError from anywhere else is a bug, shown whole."""
    from zoo.core.errors import ConfigError, ZooError
    from zoo.core.problems import DataError
    from zoo.run.errors import user_errors_as_one_line

    for bug in (ValueError("a bug deep in a library"), TypeError("unsupported operand"), KeyError("x")):
        with pytest.raises(type(bug)), user_errors_as_one_line():
            raise bug
    with pytest.raises(SystemExit, match=r"^error: --lr: expected a positive number"), user_errors_as_one_line():
        raise ConfigError("--lr: expected a positive number")
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ZooError)


def test_cowboy_ids_outside_64_bit_unsigned_are_one_line(tmp_path):
    from datamodules.cowboy import read_image_list
    from zoo.core.problems import DataError

    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(_png(4, 4))
    (tmp_path / "images" / "b.jpg").write_bytes(_png(4, 4))
    csv = tmp_path / "valid.csv"
    csv.write_text(f"id,file_name\n{2**64 - 1},a.jpg\n{2**64},b.jpg\n")
    with pytest.raises(DataError, match=rf"valid\.csv: line 3: id {2**64} is above 2\*\*64 - 1") as e:
        read_image_list(csv, tmp_path / "images")
    assert "line 2" not in str(e.value)  # 2**64 - 1 itself is an id
    csv.write_text("id,file_name\n\u00b2,a.jpg\n")  # a superscript two: a digit to str.isdigit, not to int
    with pytest.raises(DataError, match=r"valid\.csv: line 2: id '\u00b2' is not a non-negative integer"):
        read_image_list(csv, tmp_path / "images")


# -- numeric options checked by the parser --------------------------------------------------------
BAD_OPTIONS = [
    ("translate", ["hi"], "--beam", "0", "expected an integer at least 1, got 0"),
    ("translate", ["hi"], "--max_len", "-1", "expected an integer from 1 to 1000, got -1"),
    ("translate", ["hi"], "--max_len", "0", "expected an integer from 1 to 1000, got 0"),
    ("translate", ["hi"], "--max_len", "1000000", "expected an integer from 1 to 1000, got 1000000"),
    ("export", ["--out", "m.onnx"], "--image_size", "0", "expected an integer from 1 to 4096, got 0"),
    ("export", ["--out", "m.onnx"], "--image_size", "-3", "expected an integer from 1 to 4096, got -3"),
    ("predict", ["a.png"], "--top_k", "0", "expected an integer at least 1, got 0"),
    ("predict", ["a.png"], "--batch_size", "-1", "expected an integer from 1 to 4096, got -1"),
    ("detect", ["a.png", "--out", "o"], "--score_threshold", "nan", "expected a number from 0 to 1, got nan"),
    ("segment", ["a.png"], "--alpha", "1.5", "expected a number from 0 to 1, got 1.5"),
    ("similar", ["cat"], "--k", "0", "expected an integer at least 1, got 0"),
    ("generate", [], "--num_tokens", "0", "expected an integer from 1 to 100000, got 0"),
    ("generate", [], "--temperature", "-1", "expected a number from 0 to 100, got -1"),
    ("forecast", [], "--steps", "0", "expected an integer from 1 to 10000, got 0"),
    ("show_augment", ["--config", "c.yaml"], "--draws", "many", "expected an integer from 1 to 64, got 'many'"),
]


@pytest.mark.parametrize("command, argv, option, value, expected", BAD_OPTIONS)
def test_numeric_options_are_checked_by_the_parser(command, argv, option, value, expected, tmp_path, capsys):
    import importlib

    main = importlib.import_module(f"zoo.cli.{command}").main
    ckpt = [] if command == "show_augment" else ["--ckpt_path", str(tmp_path / "never_read.ckpt")]
    with pytest.raises(SystemExit) as exit_:
        main([*ckpt, *argv, option, value])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"error: argument {option}: {expected}")
