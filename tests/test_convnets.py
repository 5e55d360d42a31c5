"""The convolutional zoo: forward/backward at each model's smallest valid input, 32x32 (CIFAR)
where the architecture allows it, and the variants' arguments."""

from __future__ import annotations

import pytest
import torch

from zoo.models.registry import create_model, list_models

# smallest input side each architecture accepts (see the models' docstrings)
MIN_SIZE = {
    "alexnet": 65,
    "nin": 67,
    "vgg11": 32,
    "vgg11_narrow": 32,
    "googlenet": 1,
    "resnet18": 1,
    "resnet34": 1,
    "resnet50": 1,
    "densenet": 29,
}
SIZED = {"alexnet", "vgg11", "vgg11_narrow"}  # first linear layer sized by image_size


def _build(name: str, size: int, **kw) -> torch.nn.Module:
    return create_model(name, **({"image_size": size} if name in SIZED else {}), **kw)


def test_every_conv_family_model_is_covered() -> None:
    families = ("alexnet", "vgg*", "nin", "googlenet", "resnet*", "densenet*")
    found = {n for pattern in families for n in list_models(pattern)}
    assert found == set(MIN_SIZE)


@pytest.mark.parametrize("name", sorted(MIN_SIZE))
def test_forward_backward_at_smallest_input(name: str) -> None:
    torch.manual_seed(0)
    size = MIN_SIZE[name]
    model = _build(name, size, num_classes=7, in_channels=2)
    x = torch.randn(2, 2, size, size)
    out = model(x)
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"


@pytest.mark.parametrize("name", sorted(n for n, s in MIN_SIZE.items() if s > 1))
def test_one_pixel_below_the_minimum_fails(name: str) -> None:
    size = MIN_SIZE[name] - 1
    with pytest.raises((ValueError, RuntimeError), match="too small"):
        _build(name, size).eval()(torch.zeros(1, 1, size, size))


@pytest.mark.parametrize("name", sorted(n for n, s in MIN_SIZE.items() if s <= 32 and n != "vgg11"))
def test_cifar_sized_rgb_input(name: str) -> None:
    model = _build(name, 32, num_classes=10, in_channels=3).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_sized_models_say_what_input_they_expect() -> None:
    model = create_model("vgg11_narrow", image_size=32).eval()
    with pytest.raises(ValueError, match=r"built for 32x32 inputs but got \(64, 64\)"):
        model(torch.zeros(1, 1, 64, 64))


def test_vgg_narrow_is_an_argument_not_a_copy() -> None:
    full = create_model("vgg11", image_size=32)
    narrow = create_model("vgg11_narrow", image_size=32)
    assert type(full) is type(narrow)
    assert [m.out_channels for m in narrow.features.modules() if isinstance(m, torch.nn.Conv2d)] == [
        16, 32, 64, 64, 128, 128, 128, 128,
    ]  # fmt: skip
    assert create_model("vgg11", width_div=4, image_size=32).state_dict().keys() == narrow.state_dict().keys()


def test_resnet_variants() -> None:
    def count(m: torch.nn.Module, kind: type) -> int:
        return sum(isinstance(x, kind) for x in m.modules())

    from zoo.models.resnet import Bottleneck, Residual

    assert count(create_model("resnet18"), Residual) == 8
    assert count(create_model("resnet34"), Residual) == 16
    r50 = create_model("resnet50")
    assert count(r50, Bottleneck) == 16 and r50.fc.in_features == 2048
    # the CIFAR stem keeps 32x32 through the first stage: 4x4 before pooling instead of 1x1
    cifar = create_model("resnet18", stem="cifar", width=8, in_channels=3).eval()
    with torch.no_grad():
        assert cifar.features[:-2](torch.zeros(1, 3, 32, 32)).shape == (1, 64, 4, 4)
    with pytest.raises(ValueError, match="stem must be"):
        create_model("resnet18", stem="tiny")


# the course's settings (d2l chapters 8.1-8.7): arch, lr, batch size, resize; all 10 epochs, Xavier init
COURSE = {
    "alexnet_fashion_mnist": ("alexnet", 0.01, 128, 224),
    "vgg_fashion_mnist": ("vgg11_narrow", 0.05, 128, 224),
    "nin_fashion_mnist": ("nin", 0.1, 128, 224),
    "googlenet_fashion_mnist": ("googlenet", 0.1, 128, 96),
    "resnet18_fashion_mnist": ("resnet18", 0.05, 256, 96),
    "densenet_fashion_mnist": ("densenet", 0.1, 256, 96),
}


@pytest.mark.parametrize("recipe", sorted(COURSE))
def test_course_recipe_settings(recipe: str, tmp_path) -> None:
    from zoo.cli.fit import make_cli

    cli = make_cli(["--config", f"configs/{recipe}.yaml", "--trainer.default_root_dir", str(tmp_path)])
    arch, lr, batch, size = COURSE[recipe]
    hp = cli.model.hparams
    assert (hp.arch, hp.lr, hp.optimizer, hp.init) == (arch, lr, "sgd", "xavier")
    assert (cli.datamodule.batch_size, cli.datamodule.resize, cli.trainer.max_epochs) == (batch, size, 10)
