"""Style transfer: the losses on tiny tensors against hand-computed values, VGG-19's layers, the
weights file through the safe loader, and the command end to end at a tiny size."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.ops import style
from zoo.run.checkpoint import CheckpointError
from zoo.style_transfer import RANDOM_NOTE
from zoo.style_transfer import main as style_transfer


def test_gram_content_style_and_tv_losses_by_hand():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])  # (1, 2, 2, 2)
    # rows: channels flattened, [1, 2, 3, 4] and [0, 1, 0, 1]; X X^T / (c * h * w) with c h w = 8
    expected = torch.tensor([[30.0, 6.0], [6.0, 2.0]]) / 8
    assert torch.allclose(style.gram(x), expected)
    assert float(style.content_loss(x, x + 1)) == pytest.approx(1.0)
    assert float(style.style_loss(x, torch.zeros(2, 2))) == pytest.approx(float((expected**2).mean()))
    # TV: vertical differences |3-1|, |4-2|, 0, 0 (mean 1); horizontal |2-1|, |4-3|, 1, 1 (mean 1)
    assert float(style.tv_loss(x)) == pytest.approx(0.5 * (1.0 + 1.0))
    parts = style.total_loss(x, [x], [x], [x + 1], [torch.zeros(2, 2)], weights=(1.0, 1e3, 10.0))
    assert float(parts["content"]) == pytest.approx(1.0)
    assert float(parts["style"]) == pytest.approx(1e3 * float((expected**2).mean()))
    assert float(parts["total"]) == pytest.approx(float(parts["content"] + parts["style"] + parts["tv"]))


def test_vgg19_layers_and_the_weights_file(tmp_path):
    net = style.vgg19_features(None)
    assert len(net) == 29  # up to style layer 28
    contents, styles = style.extract(net, torch.rand(1, 3, 32, 32))
    assert [s.shape[1] for s in styles] == [64, 128, 256, 512, 512] and contents[0].shape == (1, 512, 4, 4)
    # torchvision's state-dict layout (features.<i>.weight ...), as vgg19-dcbb9e9d.pth holds it
    state = {f"features.{k}": v + 1 for k, v in net.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "vgg19.pth")
    loaded = style.vgg19_features(tmp_path / "vgg19.pth")
    assert torch.equal(loaded[0].weight, net[0].weight + 1) and not loaded[0].weight.requires_grad
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"other\.pth: not a VGG-19 state dict"):
        style.vgg19_features(tmp_path / "other.pth")

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"features.0.weight": Evil()}))
    with pytest.raises(CheckpointError, match="evil.pth"):
        style.vgg19_features(tmp_path / "evil.pth")


def test_command_with_random_weights_says_so_and_writes_image_and_curve(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("content", "style"):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(tmp_path / f"{name}.jpg")
    out = tmp_path / "out.png"
    result = style_transfer(["--content", str(tmp_path / "content.jpg"), "--style", str(tmp_path / "style.jpg"),
                             "--out", str(out), "--random_weights", "--size", "24", "32", "--epochs", "6",
                             "--decay_every", "2", "--no_progress"])  # fmt: skip
    assert Image.open(out).size == (32, 24) and Image.open(tmp_path / "out_loss.png").format == "PNG"
    assert result["random_weights"] and len(result["history"]["total"]) == 6
    assert result["history"]["total"][-1] < result["history"]["total"][0]  # the optimisation works
    assert capsys.readouterr().out.count(RANDOM_NOTE) == 2  # before and after the run


def test_command_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(
        FileNotFoundError, match=r"no VGG-19 weights.*torchvision\.models\.vgg19\(weights='IMAGENET1K_V1'"
    ):
        style_transfer(["--content", "a.jpg", "--style", "b.jpg", "--out", str(tmp_path / "o.png")])
