"""The course's transposed-convolution demos as checks: by hand == nn.ConvTranspose2d, the matrix
view, bilinear initialisation == bilinear upsampling, and the FCNs' output size == input size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zoo.models.registry import create_model
from zoo.ops.transposed_conv import (
    bilinear_kernel,
    conv_as_matmul,
    corr2d,
    kernel2matrix,
    trans_conv,
    trans_conv_as_matmul,
)


def test_trans_conv_by_hand_is_conv_transpose2d():
    x, k = torch.tensor([[0.0, 1.0], [2.0, 3.0]]), torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert torch.equal(trans_conv(x, k), torch.tensor([[0.0, 0.0, 1.0], [0.0, 4.0, 6.0], [4.0, 12.0, 9.0]]))  # course
    torch.manual_seed(0)
    x, k = torch.randn(4, 5), torch.randn(3, 2)
    tconv = nn.ConvTranspose2d(1, 1, kernel_size=k.shape, bias=False)
    tconv.weight.data = k[None, None]
    assert torch.allclose(trans_conv(x, k), tconv(x[None, None])[0, 0], atol=1e-6)


def test_convolution_is_a_matrix_product_and_its_transpose_the_transposed_convolution():
    torch.manual_seed(0)
    x, k = torch.randn(3, 3), torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    W = kernel2matrix(k, (3, 3))
    assert W.shape == (4, 9)
    assert torch.equal(W[0], torch.tensor([1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]))  # the course's first row
    assert torch.allclose(conv_as_matmul(x, k), corr2d(x, k)) and torch.allclose(
        corr2d(x, k), F.conv2d(x[None, None], k[None, None])[0, 0], atol=1e-6
    )
    y = torch.randn(2, 2)
    assert torch.allclose(trans_conv_as_matmul(y, k), trans_conv(y, k), atol=1e-6)
    x = torch.randn(4, 5)  # any size: W maps 20 inputs to 3 x 4 outputs, W.T back to 4 x 5
    assert torch.allclose(trans_conv_as_matmul(corr2d(x, k), k), trans_conv(corr2d(x, k), k), atol=1e-5)


@pytest.mark.parametrize("stride", [2, 4, 32])
def test_bilinear_kernel_reproduces_bilinear_upsampling(stride):
    torch.manual_seed(0)
    x = torch.rand(1, 3, 5, 7)
    up = nn.ConvTranspose2d(3, 3, kernel_size=2 * stride, stride=stride, padding=stride // 2, bias=False)
    up.weight.data = bilinear_kernel(3, 3, 2 * stride)
    y, ref = up(x), F.interpolate(x, scale_factor=stride, mode="bilinear", align_corners=False)
    assert y.shape == ref.shape == (1, 3, 5 * stride, 7 * stride)
    inner = (..., slice(stride, -stride), slice(stride, -stride))  # away from the zero-padded border
    assert torch.allclose(y[inner], ref[inner], atol=1e-5)
    assert bilinear_kernel(3, 3, 4)[0, 1].abs().sum() == 0  # channels are upsampled on their own


def test_course_fcn_starts_as_bilinear_upsampling_and_keeps_odd_sizes():
    torch.manual_seed(0)
    model = create_model("fcn_resnet18", num_classes=4, width=4).eval()
    coarse = torch.rand(1, 4, 3, 4)
    ref = F.interpolate(coarse, scale_factor=32, mode="bilinear", align_corners=False)
    assert torch.allclose(model.transpose_conv(coarse)[..., 32:-32, 32:-32], ref[..., 32:-32, 32:-32], atol=1e-5)
    with torch.no_grad():
        for h, w in [(33, 47), (65, 97), (31, 1 + 32 * 3)]:
            assert model(torch.rand(2, 3, h, w)).shape == (2, 4, h, w)


def test_torchvision_segmenters_return_logits_at_the_input_size():
    model = create_model("deeplabv3_mobilenet_v3_large", num_classes=3).eval()  # the ResNet ones: test_models
    with torch.no_grad():
        assert model(torch.rand(1, 3, 35, 41)).shape == (1, 3, 35, 41)


def test_fcn_backbone_weights_from_a_zoo_checkpoint(tmp_path):
    """A zoo.fit checkpoint of a resnet18 classifier (keys model.features.*) seeds the FCN's
    backbone; its classifier is skipped; the FCN's layers stay as built."""
    src = create_model("resnet18", num_classes=10, in_channels=3, width=4)
    torch.save({"state_dict": {f"model.{k}": v for k, v in src.state_dict().items()}}, tmp_path / "cls.ckpt")
    fcn = create_model("fcn_resnet18", num_classes=5, width=4, weights=str(tmp_path / "cls.ckpt"))
    assert torch.equal(fcn.backbone.features[0].weight, src.features[0].weight)
    assert torch.equal(fcn.transpose_conv.weight, bilinear_kernel(5, 5, 64))
    with pytest.raises(ValueError, match=r"cls\.ckpt.*shape"):
        create_model("fcn_resnet18", num_classes=5, width=8, weights=str(tmp_path / "cls.ckpt"))


def test_torchvision_weights_file_with_other_classes_keeps_the_backbone(tmp_path):
    """torchvision's own file (21 VOC classes, an auxiliary head) fine-tuned to 3 classes."""
    voc = create_model("deeplabv3_mobilenet_v3_large", num_classes=21)
    state = {**voc.state_dict(), "aux_classifier.0.weight": torch.zeros(1)}
    torch.save(state, tmp_path / "deeplab.pth")
    model = create_model("deeplabv3_mobilenet_v3_large", num_classes=3, weights=str(tmp_path / "deeplab.pth"))
    assert model.classifier[4].out_channels == 3
    assert torch.equal(model.backbone["0"][0].weight, voc.backbone["0"][0].weight)
