"""Transposed convolution as the course teaches it (lecture 47, d2l "Transposed Convolution"),
and the bilinear kernel its FCN starts from (lecture 48, d2l "Fully Convolutional Networks").

These are tested teaching references: ``trans_conv`` by hand equals ``nn.ConvTranspose2d``; a
convolution is a product with a sparse matrix ``W`` built from its kernel, and the transposed
convolution multiplies by ``W.T``. What trains is ``nn.ConvTranspose2d``, initialised by
``bilinear_kernel`` (``zoo.models.fcn``).
"""

from __future__ import annotations

import torch


def trans_conv(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The course's ``trans_conv``: each input element scatters ``x[i, j] * k`` into an
    ``(h + kh - 1, w + kw - 1)`` output (one channel, stride 1, no padding)."""
    h, w = k.shape
    y = torch.zeros(x.shape[0] + h - 1, x.shape[1] + w - 1, dtype=x.dtype)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            y[i : i + h, j : j + w] += x[i, j] * k
    return y


def corr2d(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The course's 2-D cross-correlation (what deep learning calls convolution), by hand."""
    h, w = k.shape
    y = torch.zeros(x.shape[0] - h + 1, x.shape[1] - w + 1, dtype=x.dtype)
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] = (x[i : i + h, j : j + w] * k).sum()
    return y


def kernel2matrix(k: torch.Tensor, in_shape: tuple[int, int]) -> torch.Tensor:
    """The matrix ``W`` with ``W @ x.flatten() == corr2d(x, k).flatten()`` for inputs of
    ``in_shape`` (the course's ``kernel2matrix``, for any kernel and input size): row ``r`` holds
    the kernel at the place of output element ``r``, zeros elsewhere."""
    kh, kw = k.shape
    h, w = in_shape
    oh, ow = h - kh + 1, w - kw + 1
    W = torch.zeros(oh * ow, h * w, dtype=k.dtype)
    for i in range(oh):
        for j in range(ow):
            place = torch.zeros(h, w, dtype=k.dtype)
            place[i : i + kh, j : j + kw] = k
            W[i * ow + j] = place.flatten()
    return W


def conv_as_matmul(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``corr2d(x, k)`` computed as ``W @ x``."""
    oh, ow = x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1
    return (kernel2matrix(k, tuple(x.shape)) @ x.flatten()).reshape(oh, ow)


def trans_conv_as_matmul(y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The transposed convolution of ``y`` computed as ``W.T @ y``: back to the convolution's
    input shape."""
    in_shape = (y.shape[0] + k.shape[0] - 1, y.shape[1] + k.shape[1] - 1)
    return (kernel2matrix(k, in_shape).T @ y.flatten()).reshape(in_shape)


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> torch.Tensor:
    """The course's ``bilinear_kernel``: a ``(in_channels, out_channels, k, k)`` weight for
    ``nn.ConvTranspose2d`` that upsamples each channel on its own by bilinear interpolation
    (a stride of ``s`` pairs with ``k = 2 s``, ``padding = s / 2``). Channels ``c -> c`` get the
    interpolation tent, the others zero."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float32)
    tent = 1 - (og - center).abs() / factor  # (k,)
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
    channels = torch.arange(min(in_channels, out_channels))
    weight[channels, channels] = tent[:, None] * tent[None, :]
    return weight
