"""Every command of the user docs runs as written (tests/docs_commands.py extracts them).

In a sandbox laid out as a checkout (``configs/``, ``data/``, ``runs/``) beside a ``../shared/data``
of tiny data sets in their real formats, and in process:

* the README's walkthrough, in its order: a ``zoo.fit`` run that a later command reads
  (``runs/<name>/...``, ``--ckpt_path last``, a competition's stages) trains, shortened to a batch
  or two; every other ``zoo.fit`` line resolves its config (``--print_config``); every other
  command checks its inputs (``--dry_run``: options parsed, files and checkpoints loaded, nothing
  computed or written);
* then every command of docs/*.md and the competitions' READMEs, the same way, in that sandbox;
* a command marked ``needs: X`` in its comment is checked against its mark: a GPU line's config
  asks for CUDA, a multi-machine line's for several nodes, a Docker line's tail resolves through
  the image's entry point, and a dry run that needs the course's package, Kaggle's data or
  ImageNet weights stops at once with one line naming what is missing.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch
import yaml
from PIL import Image

from tests.conftest import write_idx
from tests.docs_commands import NEEDS, ROOT, Command, all_commands
from tests.test_competitions_house_prices import write_house_csvs
from tests.test_detection_data import write_yolo
from tests.test_snli import write_snli
from tests.test_translation import write_counting_pairs
from zoo.cli import COMMANDS as ZOO_COMMANDS

COMMANDS = all_commands()
SHORT = ["--trainer.max_epochs", "1", "--trainer.max_steps", "-1", "--trainer.limit_train_batches", "2",
         "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1", "--trainer.val_check_interval",
         "1.0", "--trainer.check_val_every_n_epoch", "1", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false"]  # fmt: skip
SETUP = re.compile(r"(python3? -m venv|\. \.venv/bin/activate|pip3? install|pytest$)")
# words the docs' commands look up or translate, so that a tiny corpus knows them
WORDS = "chip intel market president time traveller go i lost a man plays guitar person makes music".split()
# placeholders in the docs' generic lines, by the option they follow
PLACEHOLDERS = {"<competition>": "cifar10", "--data_dir DIR": "--data_dir ../shared/data/cifar10_tiny",
                "--work_dir W": "--work_dir runs/competitions/cifar10", "--d2l_path DIR": "--d2l_path ../d2l",
                "--budget EPOCHS": "--budget 1", "--only GLOB": "--only airfoil_sgd"}  # fmt: skip


# -- the sandbox ------------------------------------------------------------------------------
def _text(n_lines: int, seed: int, vocab: int = 40) -> str:
    rng = np.random.default_rng(seed)
    words = WORDS + [f"w{i}" for i in range(vocab)]
    return "".join(" " + " ".join(rng.choice(words, rng.integers(4, 12))) + " .\n" for _ in range(n_lines))


def _png(path: Path, size: tuple[int, int] = (32, 32), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _fashion_mnist(folder: Path, n_train: int = 5100, n_test: int = 100) -> None:
    """The four IDX files; as many training images as the recipes' 5,000 held out and a few more."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 10)


def _cifar_kaggle(folder: Path, n_train: int = 40, n_test: int = 8, test_labels: bool = False) -> None:
    classes = "airplane automobile bird cat deer dog frog horse ship truck".split()
    rows = ["id,label"] + [f"{i},{classes[(i - 1) % 10]}" for i in range(1, n_train + 1)]
    if test_labels:
        (folder / "test").mkdir(parents=True)
        labels = "".join(f"{i},{classes[i % 10]}\n" for i in range(1, n_test + 1))
        (folder / "testLabels.csv").write_text("id,label\n" + labels)
    for i in range(1, n_train + 1):
        _png(folder / "train" / f"{i}.png", seed=i)
    for i in range(1, n_test + 1):
        _png(folder / "test" / f"{i}.png", seed=1000 + i)
    (folder / "trainLabels.csv").write_text("\n".join(rows) + "\n")


def make_sandbox(root: Path) -> Path:
    """``root/repo`` (the working directory: configs, data, user files) and ``root/shared/data``."""
    repo, shared = root / "repo", root / "shared" / "data"
    repo.mkdir(parents=True)
    (repo / "configs").symlink_to(ROOT / "configs")
    _fashion_mnist(repo / "data")
    _fashion_mnist(shared / "fashion_mnist")
    _cifar_kaggle(shared / "cifar10", test_labels=True)
    _cifar_kaggle(shared / "cifar10_tiny")
    write_house_csvs((shared / "kaggle_house").mkdir() or shared / "kaggle_house")
    (shared / "time_machine").mkdir()
    (shared / "time_machine" / "timemachine.txt").write_text(_text(300, 0).replace(" w", " the traveller "))
    write_counting_pairs(shared / "fra_eng" / "fra-eng", n=1100)  # 600 to train on, 400 held out
    (shared / "ptb" / "ptb").mkdir(parents=True)
    for k, (name, n) in enumerate((("train", 600), ("valid", 40), ("test", 40))):
        (shared / "ptb" / "ptb" / f"ptb.{name}.txt").write_text(_text(n, k))
    (shared / "wikitext2").mkdir()
    for k, name in enumerate(("valid", "test")):
        paragraphs = ["", " = Article = ", ""] + [_text(4, 10 * k + p).replace("\n", " ") + "\n" for p in range(60)]
        (shared / "wikitext2" / f"{name}.txt").write_text("\n".join(paragraphs))
    write_snli(shared / "snli_subset", {"dev": 60, "test": 20})
    write_yolo(shared / "banana_yolo_roboflow", {"train": 8, "valid": 2, "test": 2}, names=("Banana",))
    banana = shared / "banana_yolo_roboflow" / "train" / "images"  # the two photos docs/segmentation.md names
    for name in (
        "WIN_20240313_14_16_53_Pro_jpg.rf.2710639943127579152884be1878e9ed.jpg",
        "WIN_20240313_14_19_43_Pro_jpg.rf.00ed721218cd84dbc4dbad08fc41ca91.jpg",
    ):
        _png(banana / name, (48, 64))
    for name in ("a.jpg", "b.jpg", "img.jpg", "img1.jpg", "img2.jpg", "img2.png", "shirt.png", "photos/1.png",
                 "more/x/1.jpg", "content.jpg", "style.jpg", "x.png"):  # fmt: skip
        _png(repo / name, (48, 64))
    return repo


# -- running a command in process ---------------------------------------------------------------
def _entry(argv: list[str]) -> tuple[str, list[str]] | None:
    """``(module, its arguments)`` of a Python command line (env prefixes, torchrun, srun,
    docker run's image dropped), or ``None`` for another program."""
    while argv and re.fullmatch(r"\w+=\S*", argv[0]):
        argv = argv[1:]
    if argv[:1] == ["srun"]:
        argv = argv[1:]
    if argv[:1] == ["torchrun"]:
        return "zoo.fit", argv[argv.index("zoo.fit") + 1 :]
    if argv[:2] == ["docker", "run"]:
        return "zoo.fit", argv[argv.index("d2l-zoo") + 1 :]
    if argv[:3] == ["python", "-m", "zoo"] and len(argv) > 3:  # the dispatcher: python -m zoo <command>
        return ("zoo.fit" if argv[3] == "fit" else f"zoo.cli.{argv[3]}"), argv[4:]
    if argv[:2] == ["python", "-m"]:
        return argv[2], argv[3:]
    if argv[:1] == ["python"] and argv[1].startswith("scripts/"):
        return argv[1].removesuffix(".py").replace("/", "."), argv[2:]
    return None


def call(module: str, args: list[str]) -> tuple[int | str, str]:
    """Run ``module``'s ``main(args)`` as its command line would: ``(status, output)``, the
    status 0, an exit code, or the one-line error a user would see."""
    from zoo.run.errors import user_errors_as_one_line

    where = {"competitions": "competitions.__main__", "zoo": "zoo.__main__", "zoo.fit": "zoo.cli.fit"}
    main: Callable = importlib.import_module(where.get(module, module)).main
    out = io.StringIO()
    status: int | str = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            with user_errors_as_one_line():
                main(args, one_line_errors=True) if module == "zoo.fit" else main(args)
        except SystemExit as e:
            status = e.code if e.code is not None else 0
    return status, out.getvalue()


class Walk:
    """The sandbox and the shell variables set so far (``CKPT=...``)."""

    def __init__(self, repo: Path) -> None:
        self.repo, self.vars, self.checked, self.seconds = repo, {}, [], {}

    def words(self, command: Command) -> list[str]:
        text = command.text
        for key, value in PLACEHOLDERS.items():
            text = text.replace(key, value)
        for key, value in self.vars.items():
            text = text.replace(f"${key}", value)
        words = []
        for word in Command(command.doc, command.line, text).argv():
            quoted = f'"{word}"' in text or f"'{word}'" in text
            matches = sorted(str(p) for p in Path().glob(word)) if "*" in word and not quoted else []
            words += matches or [word]  # the shell expands an unquoted pattern
        return words

    def check(self, command: Command, trains: bool = False) -> None:
        """Run ``command`` the way its kind and marks say; fails the test when it does not."""
        start = time.perf_counter()
        try:
            self._check(command, trains)
        finally:
            self.seconds[command.key] = time.perf_counter() - start

    def _check(self, command: Command, trains: bool) -> None:
        argv = self.words(command)
        if re.fullmatch(r"\w+=\S+", command.text):  # a shell variable for the next lines
            name, value = command.text.split("=", 1)
            self.vars[name] = value
            return
        if SETUP.match(command.text):  # installing: .ci/run does it, tests/test_docker.py checks the steps
            extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
            named = set(re.findall(r"\.\[(\w+)\]", command.text))
            assert named <= extras, f"{command.id}: no extra {named - extras} in pyproject.toml"
            return
        for need in command.needs:
            assert need in NEEDS, f"{command.id}: unknown mark needs: {need} (known: {', '.join(NEEDS)})"
        if re.search(r"pretrained: true|weights='IMAGENET", command.text):  # weights fetched from the internet
            assert "weights" in command.needs, f"{command.id}: fetches pretrained weights; mark it needs: weights"
        entry = _entry(argv)
        program = {"docker": "docker", "torchrun": "nodes", "srun": "nodes"}.get(argv[0])
        assert program is None or program in command.needs, f"{command.id}: {argv[0]} is not marked needs: {program}"
        if argv[:2] == ["docker", "build"]:
            assert "docker" in command.needs and (ROOT / "Dockerfile").is_file(), command.id
            return
        if argv[:2] == ["python", "-c"]:  # a one-off download of weights
            assert "weights" in command.needs and "weights=" in argv[2], command.id
            return
        if argv[0] == "curl":  # fetching weights into torch hub's cache, on a machine with internet
            assert "weights" in command.needs and "/hub/checkpoints/" in command.text, command.id
            return
        assert entry, f"{command.id}: not a command the docs test knows how to check: {command.text}"
        module, args = entry
        if module == "zoo.fit":
            self._fit(command, args, trains)
        else:
            self._dry_run(command, module, args, trains)
        self.checked.append(command)

    def _fit(self, command: Command, args: list[str], trains: bool) -> None:
        if "--help" in args or "--print_config" in args:
            status, out = call("zoo.fit", args)
            assert status == 0, f"{command.id}: {out[-2000:]}"
            return
        if trains and not command.needs:
            extra = SHORT
            if "--ckpt_path" in args and args[args.index("--ckpt_path") + 1] == "last":
                extra = [*SHORT, "--trainer.max_epochs", "2"]  # resume to train one epoch more
            status, out = call("zoo.fit", [*args, *extra])
            assert status == 0, f"{command.id}: {out[-3000:]}"
            return
        status, out = call("zoo.fit", [*args, "--print_config"])
        assert status == 0, f"{command.id}: {out[-2000:]}"
        config = yaml.safe_load(out)
        trainer = config["trainer"]
        # a GPU: asked for by name, by bf16 (this CPU-only suite's GPU lines), or by ddp/fsdp off the CPU
        strategy_on_gpu = trainer.get("strategy") in ("ddp", "fsdp") and trainer.get("accelerator") != "cpu"
        asks = (trainer.get("accelerator") in ("gpu", "cuda") or str(trainer.get("precision")).startswith("bf16")
                or "--gpus" in command.text or strategy_on_gpu)  # fmt: skip
        assert asks == ("gpu" in command.needs), f"{command.id}: asks for a GPU: {asks}; marked needs: gpu: {not asks}"
        nodes = trainer.get("num_nodes", 1) > 1
        assert nodes == ("nodes" in command.needs), f"{command.id}: several nodes: {nodes}; marked: {not nodes}"

    def _dry_run(self, command: Command, module: str, args: list[str], trains: bool) -> None:
        if "--help" in args:
            status, out = call(module, args)
            assert status == 0, f"{command.id}: {out[-2000:]}"
            return
        if "hours" in command.needs:  # too long to run even shortened: its options are in its --help
            status, out = call(module, ["--help"])
            assert status == 0 and all(a in out for a in args if a.startswith("--")), f"{command.id}: {out}"
            return
        if module == "scripts.make_shapes_segmentation" and trains:
            status, out = call(module, [*args, "--train", "6", "--val", "2"])
            assert status == 0, f"{command.id}: {out[-3000:]}"
            return
        if module == "zoo" and not args:  # the list of commands
            status, out = call(module, [])
            assert status == 0 and all(f"  {name} " in out for name in ZOO_COMMANDS), f"{command.id}: {out}"
            return
        if module == "competitions" and trains and not command.needs:
            status, out = call(module, _short_competition(args))
            assert status == 0, f"{command.id}: {out[-3000:]}"
            return
        status, out = call(module, _with_dry_run(args))
        if command.needs:
            need = {"d2l": "d2l", "data": "", "weights": "weights", "hours": ""}
            assert isinstance(status, str) and status.startswith("error: ") and "\n" not in status, (
                f"{command.id} is marked needs: {', '.join(command.needs)}, but its dry run did not stop with "
                f"one line (status {status!r}): {out[-1500:]}"
            )
            words = [need[n] for n in command.needs if need.get(n)]
            assert all(w in status.lower() for w in words), f"{command.id}: {status}"
            return
        assert status == 0, f"{command.id}: {status} {out[-2000:]}"
        assert "dry run" in out, f"{command.id}: the dry run printed no 'dry run' line: {out[-1000:]}"


def _with_dry_run(args: list[str]) -> list[str]:
    return [*args[: args.index("--")], "--dry_run", *args[args.index("--") :]] if "--" in args else [*args, "--dry_run"]


def _short_competition(args: list[str]) -> list[str]:
    if args[1] not in ("fit", "all"):
        return args
    return [*args[:2], "--train_folds", "0", *args[2:], *([] if "--" in args else ["--"]), *SHORT]  # one fold


def reads_later(commands: list[Command], i: int) -> bool:
    """Whether a later command of the walkthrough uses command ``i``'s run."""
    command = commands[i]
    argv = command.argv()
    if "make_shapes_segmentation" in command.text:
        return True
    if "zoo.fit" not in command.text and "competitions" not in command.text:
        return False
    if "competitions" in command.text:
        return argv[argv.index("competitions") + 2] in ("prepare", "fit")
    args = _entry(argv)[1]
    if "--config" not in args:
        return False
    name = args[args.index("--name") + 1] if "--name" in args else Path(args[args.index("--config") + 1]).stem
    for later in commands[i + 1 :]:
        if f"runs/{name}/" in later.text or f"{name}.yaml" in later.text and "--ckpt_path last" in later.text:
            return True
    return "--ckpt_path" in args


# -- the tests ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory):
    """The README, in order, in the sandbox: what each command did (None: checked, else the error)."""
    repo = make_sandbox(tmp_path_factory.mktemp("docs"))
    walk, results = Walk(repo), {}
    readme = [c for c in COMMANDS if c.doc == "README.md"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread is faster, and fair to a loaded machine
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(repo)
        mp.setenv("WANDB_MODE", "disabled")  # tests/test_wandb_resume.py runs it offline
        mp.setenv("WANDB_SILENT", "true")
        for i, command in enumerate(readme):
            try:
                walk.check(command, trains=reads_later(readme, i))
                results[command.key] = None
            except AssertionError as e:
                results[command.key] = str(e)
    torch.set_num_threads(threads)
    yield walk, results


def _ids(commands: list[Command]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for c in commands:
        seen[c.id] = seen.get(c.id, 0) + 1
        out.append(c.id if seen[c.id] == 1 else f"{c.id}.{seen[c.id]}")
    return out


@pytest.mark.parametrize("command", COMMANDS, ids=_ids(COMMANDS))
def test_documented_command_runs(command, walkthrough, monkeypatch):
    walk, results = walkthrough
    if command.doc == "README.md":
        assert results[command.key] is None, results[command.key]
        return
    monkeypatch.chdir(walk.repo)
    walk.check(command, trains=False)


def test_the_marks_are_known_and_explained():
    marked = [c for c in COMMANDS if c.needs]
    assert marked, "no command is marked as needing what this machine lacks"
    for c in marked:
        assert set(c.needs) <= set(NEEDS), f"{c.id}: {c.needs}"


def test_commands_write_under_runs_or_their_out(walkthrough):
    """After the whole walkthrough the checkout's top level holds only what was there (the user's
    files, configs, data) and ``runs/``: no command wrote beside the code."""
    walk, _ = walkthrough
    made = {"configs", "data", "runs", "photos", "more"} | {p.name for p in walk.repo.glob("*.*g")}
    assert {p.name for p in walk.repo.iterdir()} - made == set()
    assert (walk.repo / "runs").is_dir() and len(walk.checked) > 100
