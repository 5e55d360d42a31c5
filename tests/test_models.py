"""Every registered model: forward on its smallest valid input, output shape, finite values,
and a gradient for every parameter."""

import inspect

import pytest
import torch

from zoo.models.registry import _MODELS, create_model, list_models

IMAGE_SIZES = (12, 16, 28, 32, 64, 96, 128, 224)

#: models called with several inputs: builder arguments, the inputs, the output's shape
MULTI_INPUT = {
    "word2vec": ({"vocab_size": 7, "embed_size": 4},
                 lambda: (torch.randint(7, (2, 1)), torch.randint(7, (2, 5))), (2, 5)),
    "decomposable_attention": ({"vocab_size": 7, "embed_size": 4, "num_hiddens": 8},
                               lambda: (torch.randint(7, (2, 5)), torch.randint(7, (2, 4))), (2, 3)),
    # tokens, segments, valid lengths (and MLM positions): MLM logits (B, P, V), NSP logits after them
    "bert": ({"vocab_size": 7, "num_hiddens": 8},
             lambda: (torch.randint(7, (2, 5)), torch.tensor([[0, 0, 0, 1, 1]] * 2), torch.tensor([5, 3]),
                      torch.tensor([[1, 3], [2, 0]])), (2, 2, 7)),
    "bert_classifier": ({"vocab_size": 7, "num_hiddens": 8},
                        lambda: (torch.randint(7, (2, 5)), torch.tensor([[0, 0, 0, 1, 1]] * 2), torch.tensor([5, 3])),
                        (2, 3)),
    # one row per query: [query, n keys, n values] (n = 3) -> one prediction
    "nadaraya_watson": ({}, lambda: (torch.rand(2, 7),), (2, 1)),
    "edge_conv": ({}, lambda: (torch.rand(2, 1, 6, 8),), (2, 1, 6, 7)),
}  # fmt: skip


def _example(name: str):
    """A model and its smallest valid input: image models are tried at growing sizes."""
    params = inspect.signature(_MODELS[name]).parameters
    if name in MULTI_INPUT:
        kwargs, inputs, shape = MULTI_INPUT[name]
        return create_model(name, **kwargs), inputs(), shape
    if "vocab_size" in params:  # a language model: token ids in, (B, T, vocab) logits out
        model = create_model(name, vocab_size=7, num_hiddens=8)
        return model, torch.randint(0, 7, (2, 5)), (2, 5, 7)
    if "in_features" in params:
        model = create_model(name, in_features=5, out_features=2)
        return model, torch.randn(4, 5), (4, 2)
    small = {"min_size": 64, "max_size": 64} if "min_size" in params else {}  # detectors resize their inputs
    model = create_model(name, num_classes=3, **small)
    if "targets" in inspect.signature(model.forward).parameters:  # torchvision's detectors: lists in, losses out
        images = [torch.rand(3, 64, 64), torch.rand(3, 48, 64)]
        targets = [{"boxes": torch.tensor([[4.0, 6.0, 40.0, 44.0]]), "labels": torch.tensor([1])},
                   {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]  # fmt: skip
        return model, (images, targets), None
    in_channels = params["in_channels"].default if "in_channels" in params else 1
    if "image_size" in params:
        size = params["image_size"].default
        return model, torch.randn(2, in_channels, size, size), (2, 3)
    for size in IMAGE_SIZES:
        x = torch.randn(2, in_channels, size, size)
        try:
            with torch.no_grad():
                model.eval()(x)
        except (RuntimeError, ValueError):
            continue
        dense = getattr(model, "dense_output", False)  # segmentation: logits per pixel at the input's size
        return model.train(), x, (2, 3, size, size) if dense else (2, 3)
    raise AssertionError(f"{name}: no input size in {IMAGE_SIZES} works")


@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name):
    torch.manual_seed(0)
    model, x, shape = _example(name)
    model.train()
    out = model(*x) if isinstance(x, tuple) else model(x)
    rest: tuple = ()
    if isinstance(out, dict):  # a detector's losses
        out = torch.stack(list(out.values())).sum()
    elif getattr(model, "returns_anchors", False):  # anchors (A, 4), logits (B, A, 3 + 1), offsets (B, A, 4)
        shape, out = (2, len(out[0]), 3 + 1 + 4), torch.cat(out[1:], dim=-1)
    else:
        out, rest = (out[0], out[1:]) if isinstance(out, tuple) else (out, ())
    if shape is not None:
        assert out.shape == shape
    assert torch.isfinite(out).all()
    # every tensor output (BERT's NSP logits after its MLM logits) takes part in the backward pass
    extra = sum(o.float().square().mean() for o in rest if torch.is_tensor(o) and o.is_floating_point())
    (out.float().square().mean() + extra).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing}"


def test_lenet_rejects_too_small_images():
    with pytest.raises(ValueError, match="at least 12x12"):
        create_model("lenet", image_size=8)


def test_mlp_dropout_per_layer_and_bad_lengths():
    model = create_model("mlp", hidden=(256, 256), dropout=(0.2, 0.5))
    drops = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.2, 0.5]
    with pytest.raises(ValueError, match="2 values for 1 hidden"):
        create_model("mlp", hidden=(256,), dropout=(0.2, 0.5))
