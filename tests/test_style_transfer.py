"""Style transfer: the losses on tiny tensors against hand-computed values, VGG-19's layers, the
weights file through the safe loader, and the command end to end at a tiny size."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.cli.style_transfer import RANDOM_NOTE
from zoo.cli.style_transfer import main as style_transfer
from zoo.core.checkpoint import CheckpointError
from zoo.models.vgg import vgg19_features
from zoo.ops import style


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
    net = vgg19_features(None)
    assert len(net) == 29  # up to style layer 28
    contents, styles = style.extract(net, torch.rand(1, 3, 32, 32))
    assert [s.shape[1] for s in styles] == [64, 128, 256, 512, 512] and contents[0].shape == (1, 512, 4, 4)
    # torchvision's state-dict layout (features.<i>.weight ...), as vgg19-dcbb9e9d.pth holds it
    state = {f"features.{k}": v + 1 for k, v in net.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "vgg19.pth")
    loaded = vgg19_features(tmp_path / "vgg19.pth")
    assert torch.equal(loaded[0].weight, net[0].weight + 1) and not loaded[0].weight.requires_grad
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match=r"other\.pth: not weights of this Sequential: 25 of its 26 tensors "
                       r"missing \(features.0.bias, features.2.weight, features.2.bias \(\+22 more\)\); 1 of another "
                       r"shape \(features.0.weight \(3,\) vs \(64, 3, 3, 3\)\)"):
        vgg19_features(tmp_path / "other.pth")

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"features.0.weight": Evil()}))
    with pytest.raises(CheckpointError, match="evil.pth"):
        vgg19_features(tmp_path / "evil.pth")


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
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    file, url = "vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    with pytest.raises(CheckpointError, match=rf"weights='IMAGENET1K_V1' for torchvision's vgg19: {file} is not in "
                       rf"torch hub's cache {folder} .* run `curl -L --create-dirs -o {folder}/{file} {url}`"):
        style_transfer(["--content", "a.jpg", "--style", "b.jpg", "--out", str(tmp_path / "o.png")])


def test_command_finds_vgg19_in_torch_hubs_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    features = vgg19_features(None)  # torchvision's key names, half precision to keep the file small
    torch.save({f"features.{k}": v.half() for k, v in features.state_dict().items()}, folder / "vgg19-dcbb9e9d.pth")
    for name in ("content", "style"):
        pixels = np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{name}.jpg")
    result = style_transfer(["--content", str(tmp_path / "content.jpg"), "--style", str(tmp_path / "style.jpg"),
                             "--out", str(tmp_path / "o.png"), "--size", "16", "16", "--epochs", "1",
                             "--no_progress"])  # fmt: skip
    assert not result["random_weights"]
    assert "VGG-19 weights IMAGENET1K_V1" in capsys.readouterr().out
