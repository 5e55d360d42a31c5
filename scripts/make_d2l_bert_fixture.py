"""The course's BERT files against the zoo's BERT: writes a tiny ``bert.small``-style zip with the
course's own code and checks the zoo reproduces its outputs at the bert.small and bert.base sizes.

The course's ``bert.small.torch.zip`` / ``bert.base.torch.zip`` were written by ``d2l.torch.BERTModel``
of the d2l package 0.17.6 (zh.d2l.ai 15.7): ``pretrained.params`` (its state dict) and ``vocab.json``
(its token list) in a folder ``bert.<size>.torch/``. This script

1. installs that package (``pip install --no-deps --target DIR d2l==0.17.6``, plus ``ipython`` and
   ``matplotlib-inline``, which its import needs) unless ``DIR`` has it;
2. builds its ``BERTModel`` at tiny sizes with random weights (every parameter perturbed, so layer
   norms and biases are not at their initial values), writes ``pretrained.params`` + ``vocab.json``
   into ``--out`` (a zip in the course's layout) and d2l's outputs in eval mode on fixed tokens,
   segments, valid lengths and prediction positions beside it (``*_outputs.pt``): the committed
   fixture of ``tests/test_weights.py``;
3. at the bert.small (2 blocks, 256 wide, 4 heads, FFN 512) and bert.base (12 blocks, 768 wide, 12
   heads, FFN 3072) sizes, with the course's ``max_len`` 512, builds d2l's model with random weights,
   maps its state dict through ``zoo.models.bert.from_course`` into the zoo's ``BERTModel`` and prints
   the largest absolute difference of the encoder, MLM and NSP outputs, in float32 and in float64.

    python -m scripts.make_d2l_bert_fixture --d2l_path /work/peer/d2l0176
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import torch

from zoo.core.io import atomic_write
from zoo.models.bert import BERTModel, from_course

FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "d2l_bert_tiny.torch.zip"
RESERVED = ["<unk>", "<pad>", "<mask>", "<cls>", "<sep>"]  # the course's BERT vocabulary starts so
#: (hidden, FFN, heads, blocks) of the course's files; the vocabulary's size does not change the maths
SIZES = {"tiny": (16, 32, 2, 2), "bert.small": (256, 512, 4, 2), "bert.base": (768, 3072, 12, 12)}


def import_d2l(folder: str):
    if not (Path(folder) / "d2l" / "torch.py").is_file():
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--target", folder]
        subprocess.run([*pip, "--no-deps", "d2l==0.17.6"], check=True)
        subprocess.run([*pip, "ipython", "matplotlib-inline"], check=True)
    sys.path.insert(0, folder)
    from d2l import torch as d2l

    return d2l


def course_model(d2l, vocab_size: int, size: str, max_len: int) -> torch.nn.Module:
    """The course's ``BERTModel`` as ``load_pretrained_model`` builds it, weights perturbed."""
    hidden, ffn, heads, blocks = SIZES[size]
    net = d2l.BERTModel(vocab_size, hidden, norm_shape=[hidden], ffn_num_input=hidden, ffn_num_hiddens=ffn,
                        num_heads=heads, num_layers=blocks, dropout=0.1, max_len=max_len, key_size=hidden,
                        query_size=hidden, value_size=hidden, hid_in_features=hidden, mlm_in_features=hidden,
                        nsp_in_features=hidden)  # fmt: skip
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.eval()


def inputs(vocab_size: int, batch: int, steps: int) -> dict[str, torch.Tensor]:
    """``<cls> a <sep> b <sep>`` pairs of random words, the second one padded."""
    tokens = torch.randint(len(RESERVED), vocab_size, (batch, steps))
    valid = torch.tensor([steps - 3 * i for i in range(batch)])
    segments = torch.zeros(batch, steps, dtype=torch.long)
    for i, n in enumerate(valid.tolist()):
        cut = n // 2
        tokens[i, 0], tokens[i, cut], tokens[i, n - 1], tokens[i, n:] = 3, 4, 4, 1
        segments[i, cut + 1 : n] = 1
    positions = torch.stack([torch.randperm(int(n) - 1)[:3] + 1 for n in valid])  # never <cls>
    return {"tokens": tokens, "segments": segments, "valid_lens": valid, "pred_positions": positions}


def course_outputs(net, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        encoded, mlm, nsp = net(x["tokens"], x["segments"], x["valid_lens"], x["pred_positions"])
    return {"encoded": encoded, "mlm": mlm, "nsp": nsp}


def zoo_outputs(state: dict[str, torch.Tensor], name: str, x: dict[str, torch.Tensor],
                num_heads: int | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    converted, sizes = from_course(state, name, num_heads)
    model = BERTModel(**sizes).to(state["encoder.token_embedding.weight"].dtype).eval()
    model.load_state_dict(converted)  # strict: every tensor of the course's file has its place
    with torch.no_grad():
        encoded = model.encoder(x["tokens"], x["segments"], x["valid_lens"])
        mlm, nsp = model(x["tokens"], x["segments"], x["valid_lens"], x["pred_positions"])
    return {"encoded": encoded, "mlm": mlm, "nsp": nsp}


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float((a[k] - b[k]).abs().max()) for k in a}


def write_fixture(d2l, out: Path) -> dict[str, float]:
    torch.manual_seed(0)
    vocab = RESERVED + [f"w{i}" for i in range(35)]
    net = course_model(d2l, len(vocab), "tiny", max_len=24)
    x = inputs(len(vocab), batch=3, steps=12)
    expected = course_outputs(net, x)
    params = io.BytesIO()
    torch.save(net.state_dict(), params)
    folder = out.name.removesuffix(".zip")  # as the course's zips: bert.small.torch/pretrained.params
    with atomic_write(out, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{folder}/pretrained.params", params.getvalue())
        z.writestr(f"{folder}/vocab.json", json.dumps(vocab))
    outputs = out.with_name(out.name.removesuffix(".torch.zip") + "_outputs.pt")
    with atomic_write(outputs, "wb") as f:
        torch.save({**x, **expected, "num_heads": SIZES["tiny"][2]}, f)
    print(f"wrote {out} ({out.stat().st_size:,} bytes) and {outputs}")
    return max_diff(expected, zoo_outputs(net.state_dict(), out.name, x, num_heads=SIZES["tiny"][2]))


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--d2l_path", default="/work/peer/d2l0176",
                   help="folder holding (or to install) d2l 0.17.6 (pip install --no-deps --target)")  # fmt: skip
    p.add_argument("--out", type=Path, default=FIXTURE, help="the tiny zip to write")
    p.add_argument("--vocab_size", type=int, default=20256, help="vocabulary of the size checks")
    p.add_argument("--sizes", nargs="*", default=["bert.small", "bert.base"], choices=["bert.small", "bert.base"])
    args = p.parse_args(argv)
    d2l = import_d2l(args.d2l_path)
    torch.set_num_threads(1)
    report = {"tiny": write_fixture(d2l, args.out)}
    for size in args.sizes:
        torch.manual_seed(1)
        net = course_model(d2l, args.vocab_size, size, max_len=512)
        x = inputs(args.vocab_size, batch=2, steps=128)
        report[size] = max_diff(course_outputs(net, x), zoo_outputs(net.state_dict(), size, x))
        net.double()  # the same maths in float64: what is left of the float32 differences is rounding
        report[f"{size} (float64)"] = max_diff(course_outputs(net, x), zoo_outputs(net.state_dict(), size, x))
    for size, diffs in report.items():
        print(f"{size}: largest |zoo - d2l| " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    return report


if __name__ == "__main__":
    main()
