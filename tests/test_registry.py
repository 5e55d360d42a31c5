import subprocess
import sys

import pytest
import torch
from torch import nn

from zoo.models.registry import _MODELS, create_model, list_models, register_model


def test_duplicate_name_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_model(name="lenet")(lambda **kw: nn.Identity())


def test_register_and_create_roundtrip():
    name = "_test_identity_model"
    try:
        register_model(name=name)(lambda **kw: nn.Linear(kw.get("in_features", 3), 2))
        assert name in list_models("_test_*")
        assert create_model(name, in_features=4).in_features == 4
    finally:
        _MODELS.pop(name, None)


def test_unknown_name_suggests_close_match():
    with pytest.raises(ValueError, match="did you mean lenet"):
        create_model("lenett")


def test_list_models_pattern():
    assert "lenet_bn" in list_models("lenet*")
    assert all(n.startswith("lenet") for n in list_models("lenet*"))


def test_timm_models_by_name():
    model = create_model("timm/resnet18", num_classes=3, in_channels=1)
    model.eval()
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 3)
    with pytest.raises(ValueError, match="unknown timm model"):
        create_model("timm/not_a_model_at_all")


def test_a_zoo_argument_handed_to_timm_is_one_line_naming_it_and_the_fix():
    """cifar10_cpu.yaml's arch_kwargs (stem, width) belong to the zoo's resnet18, not to timm's."""
    with pytest.raises(ValueError, match=r"timm/resnet18 takes no argument 'stem'.*arch_kwargs '\{\}'"):
        create_model("timm/resnet18", num_classes=10, stem="cifar", width=16)


def test_zoo_models_build_without_importing_timm():
    """timm costs about a second of start-up: only a timm name or backbone may load it."""
    code = ("import sys; from zoo.models.registry import create_model, list_models; create_model('lenet'); "
            "assert 'vgg11' in list_models(); print('timm' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
