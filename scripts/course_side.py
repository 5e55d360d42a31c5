"""The course's own code (the ``d2l`` package, 1.0.3) run here, one row of docs/REPRODUCTION.md at a
time, so the table can set "course here" (mean +- spread over seeds, on this machine) beside the
course's printed number and ours.

    pip install --no-deps --target /work/peer/d2l103 d2l==1.0.3 ipython matplotlib-inline traitlets
    python scripts/course_side.py --row lenet --seed 0 --data_root ../shared/data
    python scripts/course_side.py --all --out docs/reproduction/course_here --data_root ../shared/data

A row prints one JSON object: ``value`` (the row's metric on the course's scale, the number the course
prints), ``wall_s``, ``curve`` and ``curve_x`` (what the course plots: e.g. test accuracy per epoch,
perplexity every epoch), plus ``extra`` (other printed figures). ``--out DIR`` also writes it,
atomically, to ``DIR/<row>-<seed>.json``; ``--all`` runs every row cheapest first, seed 0 and, where
that run took at most two minutes, seeds 1 and 2, skipping results already in ``--out``.

Each row runs the package's own loops and models (``train_ch6``, ``train_seq2seq``, ``train_ch11``,
``load_data_*``, ``Seq2SeqEncoder``, ``TransformerEncoder``, ...) at the course's full setting, seeded
by ``--seed``. What the Chinese book defines only in its text, or what 1.0.3 lacks (it carries the
English book's classes and only part of the Chinese book's functions: no ``train_ch3``, no
``train_ch8``), is written in ``scripts/course_book.py`` as the book does it; each row's description
says which parts those are. The package is used as shipped, with four changes that do not touch
what it computes: its downloads return the local copies under ``--data_root``; its ``Animator``
records the points it would plot instead of drawing them; its data loaders read in the main
process (its 4 workers would take every core of a small machine; shuffling happens in the main
process either way, so the batches are the same); and the ``IPython`` display modules it imports
only to show figures in a notebook are no-op stand-ins where they are not importable (the
``--target`` install brings IPython without its dependencies).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib
import json
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(ROOT))

from zoo.core.errors import ConfigError  # noqa: E402
from zoo.core.io import atomic_write, write_json  # noqa: E402
from zoo.run.errors import run_command  # noqa: E402

D2L_VERSION = "1.0.3"
DEFAULT_D2L_PATH = Path("/work/peer/d2l103")
INSTALL = "pip install --no-deps --target {dir} d2l==" + D2L_VERSION + " ipython matplotlib-inline traitlets"
THREE_SEEDS_UNDER_S = 120.0  # a row whose run takes at most this long here gets 3 seeds, else 1

# where the course's downloads are found under --data_root (DATA_HUB name -> file or folder)
LOCAL_FILES = {"time_machine": "time_machine/timemachine.txt", "airfoil": "airfoil/airfoil_self_noise.dat"}
LOCAL_FOLDERS = {"fra-eng": "fra_eng/fra-eng", "ptb": "ptb/ptb"}
# WikiText-2's train split is not here: BERT pretrains on the paragraphs of its valid and test splits
# that the zoo's recipe trains on (90% of them), written as the wiki.train.tokens the course reads
WIKITEXT2 = ("wikitext2/valid.txt", "wikitext2/test.txt")
FASHION_MNIST = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte")  # fmt: skip


@dataclass(frozen=True)
class CourseRow:
    """One row's course-side run: what it runs, the data folder it reads under --data_root, and
    about how long one run takes here (one thread; decides 3 seeds or 1)."""

    description: str
    data: str | None
    expected_s: float

    @property
    def seeds(self) -> int:
        return 3 if self.expected_s <= THREE_SEEDS_UNDER_S else 1


FM = "fashion_mnist"
TM = "time_machine"
NMT = "fra_eng/fra-eng"
CH3 = "the Chinese book's train_ch3 (book text; not in 1.0.3)"
CH8 = ("the Chinese book's load_data_time_machine (sequential partitioning) and train_ch8 (book text; "
       "not in 1.0.3) with the package's Vocab, tokenize and grad_clipping")  # fmt: skip
NMT_DATA = "load_data_nmt(64, 10), 600 pairs; train_seq2seq, Adam lr 0.005"
SCHED = (
    "the book's modern LeNet and its train loop with a scheduler (text, d2l.ai 12.11); "
    "load_data_fashion_mnist(256), evaluate_accuracy_gpu; SGD, 30 epochs"
)
AIR = "train_ch11 and get_data_ch11 (batch 10, 1,500 rows, 2 epochs); the optimizer as the book writes it"

ROWS: dict[str, CourseRow] = {
    "linear_regression": CourseRow("synthetic_data, linreg, squared_loss, sgd; the book's data_iter (text); "
                                   "lr 0.03, batch 10, 3 epochs; value: mean half squared error over the "
                                   "1,000 examples after epoch 3", None, 2),
    "softmax_regression": CourseRow(f"concise: Flatten + Linear(784, 10), N(0, 0.01); {CH3}; SGD lr 0.1, "
                                    "batch 256, 10 epochs; value: test acc", FM, 25),
    "mlp": CourseRow(f"concise: 784-256-10 ReLU, N(0, 0.01); {CH3}; SGD lr 0.1, batch 256, 10 epochs; "
                     "value: test acc", FM, 30),
    "dropout": CourseRow(f"concise: 784-256-256-10, dropout 0.2 / 0.5; {CH3}; SGD lr 0.5, batch 256, "
                         "10 epochs; value: test acc", FM, 35),
    "poly_normal": CourseRow("the book's polynomial data and loop (text) over the Chinese book's train_epoch_ch3 "
                             "(not in 1.0.3); 4 features (degree 3), SGD lr 0.01, batch 10, 400 epochs; value: "
                             "test MSE", None, 5),
    "poly_underfit": CourseRow("as poly_normal with 2 features (1, x); value: test MSE", None, 5),
    "poly_overfit": CourseRow("as poly_normal with all 20 features, 1,500 epochs; value: test MSE", None, 15),
    "conv_edge": CourseRow("the package's corr2d builds Y from the 6x8 stripe image; the book's loop (text) "
                           "learns a bias-free 1x2 Conv2d, lr 3e-2, 10 steps; value: squared-error sum at step 10",
                           None, 1),
    "weight_decay": CourseRow("concise (book text): Linear(200, 1), weight_decay 3 on the weight only, "
                              "MSELoss; synthetic_data, load_array, evaluate_loss; 20 rows, SGD lr 0.003, "
                              "batch 5, 100 epochs; value: test MSE over 100 rows", None, 5),
    "lenet": CourseRow("the book's sigmoid LeNet (text); load_data_fashion_mnist(256), train_ch6 lr 0.9, "
                       "10 epochs; value: test acc", FM, 150),
    "lenet_bn": CourseRow("the book's batch_norm and BatchNorm from scratch in LeNet (text); train_ch6 "
                          "lr 1.0, 10 epochs, batch 256; value: test acc", FM, 300),
    "sine_mlp": CourseRow("the book's noisy sine, tau 4, MLP 4-10-1 and train loop (text); load_array, "
                          "evaluate_loss; Adam lr 0.01, batch 16, 5 epochs; value: the printed training MSE",
                          None, 2),
    "rnn_scratch": CourseRow(f"the book's RNNModelScratch, 512 hidden (text); {CH8}; batch 32 x 35, lr 1, "
                             "500 epochs; value: final perplexity", TM, 85),
    "rnn": CourseRow(f"nn.RNN(28, 256) in the book's RNNModel (text); {CH8}; lr 1, 500 epochs; "
                     "value: final perplexity", TM, 30),
    "gru": CourseRow(f"nn.GRU(28, 256) in RNNModel; {CH8}; lr 1, 500 epochs; value: final perplexity", TM, 80),
    "lstm": CourseRow(f"nn.LSTM(28, 256) in RNNModel; {CH8}; lr 1, 500 epochs; value: final perplexity", TM, 65),
    "deep_lstm": CourseRow(f"nn.LSTM(28, 256, 2 layers) in RNNModel; {CH8}; lr 2, 500 epochs; "
                           "value: final perplexity", TM, 160),
    "bi_rnn": CourseRow(f"nn.LSTM(28, 256, 2 layers, bidirectional) in RNNModel; {CH8}; lr 1, 500 epochs; "
                        "value: final perplexity; extra: the nonsense it generates", TM, 400),
    "seq2seq": CourseRow("the package's Seq2SeqEncoder (32, 32, 2 layers, dropout 0.1), the Chinese book's "
                         f"Seq2SeqDecoder and EncoderDecoder (text); {NMT_DATA}, 300 epochs; value: the "
                         "printed loss", NMT, 95),
    "bahdanau": CourseRow("Seq2SeqEncoder, the book's Seq2SeqAttentionDecoder (text) over the package's "
                          f"AdditiveAttention; {NMT_DATA}, 250 epochs; value: the printed loss", NMT, 95),
    "transformer": CourseRow("the package's TransformerEncoder (32 wide, FFN 64, 4 heads, 2 blocks, dropout "
                             "0.1), the book's TransformerDecoder (text) over the package's MultiHeadAttention, "
                             f"AddNorm, PositionWiseFFN; {NMT_DATA}, 200 epochs; value: the printed loss",
                             NMT, 85),
    "nw_nonparametric": CourseRow("the book's Nadaraya-Watson data and Gaussian pooling (text; no such model "
                                  "in the package), no training; value: squared-error sum at the 50 training "
                                  "points pooled over all 50", None, 1),
    "nw_parametric": CourseRow("the book's NWKernelRegression (text): one width w, leave-one-out keys, SGD lr "
                               "0.5, 5 epochs; value: the printed loss sum of epoch 5", None, 1),
    "bert_mlm": CourseRow("the package's load_data_wiki(512, 64), BERTModel (128, FFN 256, 2 heads, 2 blocks, "
                          "dropout 0.2) and _get_batch_loss_bert; the book's train_bert (text), Adam lr 0.01, 50 "
                          "steps; on the 90% of WikiText-2 valid+test the zoo trains on (no train split here); value: "
                          "the MLM loss over the real predictions, mean over the 50 steps (the printed one also "
                          "averages over padded slots: extra.printed_mlm_loss)", "wikitext2", 80),
    "bert_nsp": CourseRow("the same run as bert_mlm; value: printed NSP loss (mean over the 50 steps)",
                          "wikitext2", 80),
    "airfoil_sgd": CourseRow(f"{AIR}: sgd, lr 0.05; value: the printed loss", "airfoil", 3),
    "airfoil_momentum": CourseRow(f"{AIR}: sgd_momentum, lr 0.005, momentum 0.9", "airfoil", 3),
    "airfoil_adagrad": CourseRow(f"{AIR}: adagrad, lr 0.1", "airfoil", 3),
    "airfoil_rmsprop": CourseRow(f"{AIR}: rmsprop, lr 0.01, gamma 0.9", "airfoil", 3),
    "airfoil_adadelta": CourseRow(f"{AIR}: adadelta, rho 0.9", "airfoil", 3),
    "airfoil_adam": CourseRow(f"{AIR}: adam, lr 0.01", "airfoil", 3),
    "airfoil_yogi": CourseRow(f"{AIR}: yogi, lr 0.01", "airfoil", 3),
    "lenet_lr_constant": CourseRow(f"{SCHED}, constant lr 0.3; value: test acc", FM, 450),
    "lenet_lr_sqrt": CourseRow(f"{SCHED}, the book's SquareRootScheduler(0.1) from epoch 1; value: test acc", FM, 450),
    "lenet_lr_multistep": CourseRow(f"{SCHED}, MultiStepLR(0.5, [15, 30], x0.5) stepped 30 times first as the book "
                                    "plots it (lr 0.125 throughout); value: test acc", FM, 450),
    "lenet_lr_cosine": CourseRow(f"{SCHED}, the book's CosineScheduler(20, 0.3 -> 0.01); value: test acc", FM, 450),
    "lenet_lr_warmup": CourseRow(f"{SCHED}, CosineScheduler with 5 warm-up epochs; value: test acc", FM, 450),
    "word2vec": CourseRow("load_data_ptb(512, 5, 5); the book's skip_gram, SigmoidBCELoss and train (text), "
                          "embed 100, Adam lr 0.002, 5 epochs; value: the printed loss (its mean over all 5 "
                          "epochs, as the book's loop accumulates); extra: the 3 tokens nearest 'chip'",
                          "ptb/ptb", 240),
}  # fmt: skip


class Recorder:
    """Stands in for d2l.Animator: keeps the points the course would plot (``X[i]``, ``Y[i]`` per
    line, ``None`` skipped, as Animator does) and draws nothing."""

    made: list[Recorder] = []

    def __init__(self, *args, legend=None, **kwargs):
        self.legend = list(legend or [])
        self.X: list[list[float]] | None = None
        self.Y: list[list[float]] | None = None
        Recorder.made.append(self)

    def add(self, x, y) -> None:
        ys = list(y) if hasattr(y, "__len__") else [y]
        xs = list(x) if hasattr(x, "__len__") else [x] * len(ys)
        if not self.X:
            self.X, self.Y = [[] for _ in ys], [[] for _ in ys]
        for i, (a, b) in enumerate(zip(xs, ys)):
            if a is not None and b is not None:
                self.X[i].append(float(a))
                self.Y[i].append(float(b))

    def line(self, i: int = 0) -> tuple[list[float], list[float]]:
        return (self.X[i], self.Y[i]) if self.X else ([], [])


def _no_op(*args, **kwargs) -> None:
    return None


def _display_stand_ins() -> None:
    """d2l imports ``IPython.display`` and ``matplotlib_inline.backend_inline`` only to show figures
    in a notebook; where they cannot be imported, no-op modules take their place."""
    for name, attrs in (("IPython", {}), ("IPython.display", {"display": _no_op, "clear_output": _no_op}),
                        ("matplotlib_inline", {}), ("matplotlib_inline.backend_inline",
                                                    {"set_matplotlib_formats": _no_op})):  # fmt: skip
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - IPython installed without its dependencies fails in many ways
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, module)


def load_d2l(d2l_path: Path) -> types.ModuleType:
    """``d2l.torch`` of the package installed at ``d2l_path``, or one line saying how to install it."""
    d2l_path = Path(d2l_path).resolve()
    init = d2l_path / "d2l" / "__init__.py"
    if not (d2l_path / "d2l" / "torch.py").is_file() or not init.is_file():
        raise FileNotFoundError(
            f"--d2l_path {d2l_path}: no d2l package there (expected {d2l_path}/d2l/torch.py); "
            f"install it with: {INSTALL.format(dir=d2l_path)}"
        )
    version = next((line.split("=")[1].strip().strip("\"'") for line in init.read_text().splitlines()
                    if line.startswith("__version__")), "unknown")  # fmt: skip
    if version != D2L_VERSION:
        raise ConfigError(
            f"--d2l_path {d2l_path}: d2l {version} there, expected {D2L_VERSION}; "
            f"install it with: {INSTALL.format(dir=d2l_path)}"
        )
    if str(d2l_path) not in sys.path:
        sys.path.insert(0, str(d2l_path))
    matplotlib.use("Agg")  # before d2l imports pyplot: no window, nothing shown
    _display_stand_ins()
    loaded = sys.modules.get("d2l")
    if loaded is not None and Path(loaded.__file__).resolve().parent != d2l_path / "d2l":
        raise ConfigError(f"--d2l_path {d2l_path}: another d2l ({loaded.__file__}) is already imported")
    d2l = importlib.import_module("d2l.torch")
    d2l.Animator = Recorder
    d2l.get_dataloader_workers = lambda: 0
    return d2l


def _local_data(d2l: types.ModuleType, data_root: Path, work_dir: Path) -> None:
    """Point the package's downloads at the copies under ``data_root``, and lay out Fashion-MNIST
    where torchvision looks for it (``../data/FashionMNIST/raw``, relative to the working folder)."""

    def local(kind: str, table: dict[str, str], name: str) -> str:
        if name not in table:
            raise ConfigError(f"the course asks for {name!r}, which has no local copy (known: {', '.join(table)})")
        path = data_root / table[name]
        if not path.exists():
            raise FileNotFoundError(f"{path}: the course's {name!r} {kind} is missing under --data_root {data_root}")
        return str(path)

    d2l.download = lambda name, *args, **kwargs: local("file", LOCAL_FILES, name)
    wiki = work_dir / "wikitext-2"
    folders = {**LOCAL_FOLDERS, "wikitext-2": str(wiki)}
    d2l.download_extract = lambda name, *args, **kwargs: local("folder", folders, name)
    if all((data_root / f).is_file() for f in WIKITEXT2):  # rewritten each run: no leftover of other data
        from scripts.bert_bench import training_text

        with atomic_write(wiki / "wiki.train.tokens") as f:
            f.write(training_text(data_root / "wikitext2")[0])
    raw = work_dir / "data" / "FashionMNIST" / "raw"
    for name in FASHION_MNIST:
        target, source = raw / name, data_root / FM / f"{name}.gz"
        if target.exists() or not source.exists():  # a row that needs it and lacks it fails in torchvision
            continue
        with gzip.open(source, "rb") as src, atomic_write(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    (work_dir / "run").mkdir(parents=True, exist_ok=True)


def run(row_id: str, seed: int, data_root: Path, d2l_path: Path = DEFAULT_D2L_PATH,
        work_dir: Path | None = None) -> dict:  # fmt: skip
    """Run the course's code for ``row_id`` with every generator seeded by ``seed``; the result dict
    (value, wall_s, curve, curve_x, extra, ...). The course's printed lines go to stderr."""
    if row_id not in ROWS:
        raise ConfigError(f"--row {row_id!r}: unknown row; expected one of {', '.join(ROWS)}")
    row = ROWS[row_id]
    data_root = Path(data_root).resolve()
    if row.data is not None and not (data_root / row.data).is_dir():
        raise FileNotFoundError(f"{data_root / row.data}: row {row_id} needs this folder (--data_root {data_root})")
    d2l = load_d2l(d2l_path)
    work_dir = Path(work_dir or Path(tempfile.gettempdir()) / "d2l-course-side").resolve()
    _local_data(d2l, data_root, work_dir)
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    book = importlib.import_module("course_book")
    train: Callable[[], dict] = getattr(book, f"row_{row_id}")
    Recorder.made.clear()
    with contextlib.chdir(work_dir / "run"), contextlib.redirect_stdout(sys.stderr):
        book.seed_all(seed)
        start = time.perf_counter()
        result = train()
        wall = time.perf_counter() - start
    return {"row": row_id, "seed": seed, "value": float(result["value"]), "wall_s": round(wall, 2),
            "curve": result["curve"], "curve_x": result["curve_x"], "extra": result.get("extra", {}),
            "description": row.description, "d2l": D2L_VERSION, "torch": torch.__version__,
            "threads": torch.get_num_threads()}  # fmt: skip


def write_result(result: dict, out: Path) -> Path:
    path = Path(out) / f"{result['row']}-{result['seed']}.json"
    write_json(path, result)
    return path


def run_all(data_root: Path, d2l_path: Path, out: Path, only: list[str] | None = None) -> None:
    """Every row (or ``only``), cheapest first: seed 0, then seeds 1 and 2 where seed 0 took at
    most two minutes; a result already in ``out`` is kept, not rerun. One failing row is reported
    and the others go on."""
    ids = sorted(only or ROWS, key=lambda r: ROWS[r].expected_s)
    failed = []
    for row_id in ids:
        for seed in range(3):
            path = Path(out) / f"{row_id}-{seed}.json"
            if path.exists():
                done = json.loads(path.read_text())
            else:
                print(f"{time.strftime('%H:%M:%S')} {row_id} seed {seed} (about {ROWS[row_id].expected_s:.0f} s)",
                      file=sys.stderr, flush=True)  # fmt: skip
                try:
                    done = run(row_id, seed, data_root, d2l_path)
                except Exception as e:  # noqa: BLE001 - one row's failure must not stop the rest
                    print(f"{row_id} seed {seed} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                    failed.append(row_id)
                    break
                write_result(done, out)
                print(json.dumps({k: done[k] for k in ("row", "seed", "value", "wall_s")}), flush=True)
            if done["wall_s"] > THREE_SEEDS_UNDER_S:
                break
    if failed:
        raise SystemExit(f"error: rows that failed: {', '.join(failed)} (see the lines above)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--row", help=f"one of: {', '.join(ROWS)}")
    which.add_argument("--all", action="store_true", help="every row (or --only), cheapest first; needs --out")
    p.add_argument("--only", nargs="+", help="with --all: these rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data_root", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument(
        "--d2l_path",
        type=Path,
        default=DEFAULT_D2L_PATH,
        help=f"the folder the package was installed into: {INSTALL.format(dir='DIR')}",
    )
    p.add_argument("--out", type=Path, help="also write each result to OUT/<row>-<seed>.json (atomically)")
    args = p.parse_args(argv)
    if args.all:
        if args.out is None:
            p.error("--all needs --out DIR")
        unknown = [r for r in args.only or [] if r not in ROWS]
        if unknown:
            p.error(f"--only: unknown rows {', '.join(unknown)}; expected some of {', '.join(ROWS)}")
        run_all(args.data_root, args.d2l_path, args.out, args.only)
        return
    result = run(args.row, args.seed, args.data_root, args.d2l_path)
    if args.out is not None:
        write_result(result, args.out)
    print(json.dumps(result))


if __name__ == "__main__":
    run_command(main)
