"""The course's small worked models: lecture 11's polynomial data, lecture 19's edge-kernel
convolution and lecture 64's Nadaraya-Watson attention pooling, with the summed squared error
their hand-written loops minimise."""

import math

import pytest
import torch

from datamodules import EdgeImage, NadarayaWatsonData, SyntheticPolynomial
from zoo.models.conv import corr2d
from zoo.models.registry import create_model
from zoo.tasks import Regression


def test_polynomial_features_are_powers_over_factorials_and_keep_the_first_columns():
    dm = SyntheticPolynomial(num_features=20, noise=0.0, num_train=5, num_val=3)
    dm.setup()
    X, y = dm._train.tensors
    x = X[:, 1]
    for i in (2, 3, 7):
        assert torch.allclose(X[:, i], x**i / math.factorial(i), rtol=1e-5, atol=1e-7)
    cubic = 5 + 1.2 * x - 3.4 * x**2 / 2 + 5.6 * x**3 / 6
    assert torch.allclose(y[:, 0], cubic, atol=1e-4)  # no noise: exactly the course's polynomial
    two = SyntheticPolynomial(num_features=2, num_train=5, num_val=3)
    two.setup()
    assert two.in_features == 2 and torch.equal(two._train.tensors[0], X[:, :2])  # the same draw, fewer columns
    with pytest.raises(ValueError, match="num_features must be in 1..max_degree=20"):
        SyntheticPolynomial(num_features=21)


def test_edge_image_and_the_convolution_that_learns_its_kernel():
    dm = EdgeImage()
    dm.setup()
    X, Y = dm._train.tensors  # (1, 1, 6, 8), (1, 1, 6, 7)
    assert torch.equal(Y[0, 0], corr2d(X[0, 0], torch.tensor([[1.0, -1.0]])))
    assert Y[0, 0, 0].tolist() == [0, 1, 0, 0, 0, -1, 0]
    conv = create_model("edge_conv")
    assert torch.allclose(conv(X), corr2d(X[0, 0], conv.weight[0, 0].detach())[None, None], atol=1e-6)
    # the course's loop: summed squared error, lr 3e-2; the kernel approaches [1, -1]
    task = Regression(arch="edge_conv", in_features=None, loss="sse", optimizer="sgd", lr=0.03)
    opt = torch.optim.SGD(task.parameters(), lr=0.03)
    for _ in range(60):
        opt.zero_grad()
        loss = ((task.model(X) - Y) ** 2).sum()
        loss.backward()
        opt.step()
    assert torch.allclose(task.model.weight.detach().flatten(), torch.tensor([1.0, -1.0]), atol=0.05)


def test_regression_sse_is_the_summed_squared_error():
    task = Regression(arch="linear", in_features=2, loss="sse")
    x, y = torch.randn(4, 2), torch.randn(4, 1)
    pred = task.model(x)
    assert torch.allclose(task.loss_scale * torch.nn.functional.mse_loss(pred, y, reduction=task.reduction),
                          ((pred - y) ** 2).sum())  # fmt: skip
    with pytest.raises(ValueError, match="mse, half_mse or sse"):
        Regression(loss="sum")


def test_nadaraya_watson_pools_with_the_gaussian_kernel():
    dm = NadarayaWatsonData(num_train=6)
    dm.setup()
    rows, y = dm._train.tensors
    assert rows.shape == (6, 1 + 2 * 5)  # each point queries the other five
    q, keys, values = rows[0, 0], rows[0, 1:6], rows[0, 6:]
    assert q.item() not in keys.tolist()
    fixed = create_model("nadaraya_watson", parametric=False)
    w = torch.softmax(-((q - keys) ** 2) / 2, 0)
    assert torch.allclose(fixed(rows[:1])[0, 0], (w * values).sum())
    assert list(fixed.parameters()) == [] and torch.allclose(fixed.attention_weights.sum(1), torch.ones(1))
    test_rows, truth = dm._val.tensors
    assert test_rows.shape == (50, 1 + 2 * 6) and torch.allclose(truth[:, 0], dm.truth(test_rows[:, 0]))
    learned = create_model("nadaraya_watson")
    loss = ((learned(rows) - y) ** 2).sum()
    loss.backward()
    assert learned.w.grad is not None and torch.isfinite(learned.w.grad).all()
    with pytest.raises(ValueError, match=r"1 \+ 2n"):
        learned(torch.zeros(2, 4))
