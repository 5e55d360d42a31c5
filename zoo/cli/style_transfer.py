"""``python -m zoo style_transfer``: neural style transfer (the course's lecture 49, d2l "Neural
Style Transfer"; Gatys et al., 2016).

    python -m zoo style_transfer --content rainier.jpg --style autumn-oak.jpg --out out.png \\
        [--weights vgg19-dcbb9e9d.pth --size 300 450 --epochs 500]

The synthesised image starts as the content image and is optimised (Adam, lr 0.3, x0.8 every 50
epochs, 500 epochs, at 300x450: the course's settings) so that its VGG-19 features match the
content image's at layer 25 and its Gram matrices match the style image's at layers 0, 5, 10, 19
and 28, with a total-variation penalty (weights 1, 1e3, 10: ``zoo.ops.style``). Writes the image
to ``--out`` and the loss curves beside it (``<out>_loss.png``).

The features need torchvision's ImageNet ``vgg19`` weights: by default ``IMAGENET1K_V1`` from torch
hub's cache, where ``torchvision.models.vgg19(weights="IMAGENET1K_V1")`` puts them
(``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``), or a local file (``--weights``).
``--random_weights`` runs the same optimisation on randomly initialised features instead: it
exercises the pipeline; it is not the course's style transfer, and the output says so.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zoo.core.errors import ConfigError
from zoo.core.images import read_rgb
from zoo.core.io import atomic_write, save_figure, subplots
from zoo.core.options import number
from zoo.models.vgg import vgg19_features
from zoo.ops import style
from zoo.run.errors import run_command

VGG19_WEIGHTS = "IMAGENET1K_V1"  # torchvision's ImageNet VGG-19: vgg19-dcbb9e9d.pth in torch hub's cache
RANDOM_NOTE = ("RANDOM WEIGHTS: the VGG-19 features are untrained (--random_weights), so this is a run of the "
               "optimisation only, not the course's style transfer, which needs ImageNet weights")  # fmt: skip


def preprocess(path: str | Path, size: tuple[int, int]) -> torch.Tensor:
    """An image file as a ``(1, 3, h, w)`` tensor resized to ``size`` and ImageNet-normalised."""
    image = Image.fromarray(read_rgb(path)).resize((size[1], size[0]), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image).copy()).float().div(255).permute(2, 0, 1)
    mean, std = torch.tensor(style.RGB_MEAN)[:, None, None], torch.tensor(style.RGB_STD)[:, None, None]
    return ((x - mean) / std)[None]


def postprocess(x: torch.Tensor) -> Image.Image:
    mean, std = torch.tensor(style.RGB_MEAN)[:, None, None], torch.tensor(style.RGB_STD)[:, None, None]
    rgb = (x[0].detach().cpu() * std + mean).clamp(0, 1)
    return Image.fromarray((rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def transfer(content: torch.Tensor, style_image: torch.Tensor, net: torch.nn.Sequential, epochs: int = 500,
             lr: float = 0.3, decay_every: int = 50, gamma: float = 0.8,
             weights: tuple[float, float, float] = (style.CONTENT_WEIGHT, style.STYLE_WEIGHT, style.TV_WEIGHT),
             progress: bool = True) -> tuple[torch.Tensor, dict[str, list[float]]]:  # fmt: skip
    """The course's ``train``: optimise a copy of ``content``; returns it and the loss history."""
    from tqdm import tqdm

    with torch.no_grad():
        contents, _ = style.extract(net, content)
        _, styles = style.extract(net, style_image)
        grams = [style.gram(y) for y in styles]
    x = content.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, decay_every, gamma)
    history: dict[str, list[float]] = {"content": [], "style": [], "tv": [], "total": []}
    bar = tqdm(range(epochs), desc="style transfer", disable=not progress)
    for _ in bar:
        opt.zero_grad()
        contents_hat, styles_hat = style.extract(net, x)
        losses = style.total_loss(x, contents_hat, styles_hat, contents, grams, weights)
        losses["total"].backward()
        opt.step()
        sched.step()
        for k, v in losses.items():
            history[k].append(float(v.detach()))
        bar.set_postfix(loss=f"{history['total'][-1]:.3g}")
    return x.detach(), history


def plot_losses(history: dict[str, list[float]], path: Path, title: str) -> Path:
    fig, ax = subplots(figsize=(6, 3.5))
    for k, v in history.items():
        ax.plot(range(1, len(v) + 1), v, label=k)
    ax.set(xlabel="epoch", ylabel="loss (weighted)", yscale="log", title=title)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description="Neural style transfer with VGG-19 features (the course's lecture 49).")
    p.add_argument("--content", required=True, help="the content image")
    p.add_argument("--style", required=True, help="the style image")
    p.add_argument("--out", default="runs/style_transfer/style_transfer.png", help="the synthesised image (PNG)")
    p.add_argument("--weights", help="VGG-19 weights: a file of torchvision's vgg19 layout or a torchvision weights "
                                      f"name (default {VGG19_WEIGHTS}: vgg19-dcbb9e9d.pth from torch hub's cache)")
    p.add_argument("--random_weights", action="store_true", help="untrained features: a pipeline check only")
    p.add_argument("--size", type=number(int, 16, 4096), nargs=2, default=(300, 450), metavar=("H", "W"))
    p.add_argument("--epochs", type=number(int, 1), default=500)
    p.add_argument("--lr", type=number(float, 0, low_open=True), default=0.3)
    p.add_argument("--decay_every", type=number(int, 1), default=50, help="epochs between learning-rate decays")
    p.add_argument("--gamma", type=number(float, 0, 1, low_open=True), default=0.8, help="learning-rate decay factor")
    p.add_argument("--content_weight", type=number(float, 0), default=style.CONTENT_WEIGHT)
    p.add_argument("--style_weight", type=number(float, 0), default=style.STYLE_WEIGHT)
    p.add_argument("--tv_weight", type=number(float, 0), default=style.TV_WEIGHT)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--dry_run", action="store_true", help="load and check the inputs, then stop")
    args = p.parse_args(argv)
    if args.epochs < 1 or min(args.size) < 16:
        raise ConfigError(f"--epochs must be >= 1 and --size at least 16x16, got {args.epochs} and {args.size}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out}: expected a .png file name")
    if args.random_weights and args.weights:
        raise ConfigError("give --weights or --random_weights, not both")
    weights = None if args.random_weights else args.weights or VGG19_WEIGHTS
    if weights is None:
        print(RANDOM_NOTE)
    net = vgg19_features(weights).to(args.device)
    size = tuple(args.size)
    content, style_image = (preprocess(f, size).to(args.device) for f in (args.content, args.style))
    if args.dry_run:
        return print(f"dry run: {args.content} and {args.style} read; would write {out}")
    start = time.perf_counter()
    x, history = transfer(content, style_image, net, args.epochs, args.lr, args.decay_every, args.gamma,
                          (args.content_weight, args.style_weight, args.tv_weight), not args.no_progress)  # fmt: skip
    seconds = time.perf_counter() - start
    with atomic_write(out, "wb") as f:
        postprocess(x).save(f, format="PNG")
    what = "random VGG-19 weights (pipeline check)" if weights is None else f"VGG-19 weights {weights}"
    curve = plot_losses(history, out.with_name(f"{out.stem}_loss.png"), f"{args.epochs} epochs, {what}")
    final = {k: v[-1] for k, v in history.items()}
    print(f"{out} ({size[0]}x{size[1]}, {args.epochs} epochs, {seconds:.0f} s, {what}); loss curve {curve}; "
          f"final losses: " + ", ".join(f"{k} {v:.4g}" for k, v in final.items()))  # fmt: skip
    if weights is None:
        print(RANDOM_NOTE)
    return {"image": out, "curve": curve, "seconds": seconds, "history": history, "random_weights": weights is None}


def run(argv: list[str] | None = None) -> None:
    """The command line (``python -m zoo style_transfer``)."""
    run_command(lambda: main(argv))


if __name__ == "__main__":
    run()
