"""The 1x1 convolution's matmul path gives the convolution's values and gradients."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from archsearch.nn.ops import Conv1x1, FactorizedReduce, pointwise


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize(("stride", "offset"), [(1, 0), (2, 0), (2, 1)])
def test_pointwise_matches_conv2d_forward_and_backward(
        layout: torch.memory_format, stride: int, offset: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, 5, 7, generator=g).contiguous(memory_format=layout)
    w = torch.randn(3, 6, 1, 1, generator=g)
    x1, w1 = x.clone().requires_grad_(), w.clone().requires_grad_()
    x2, w2 = x.clone().requires_grad_(), w.clone().requires_grad_()
    y1 = pointwise(x1, w1, stride, offset)
    y2 = F.conv2d(x2[:, :, offset:, offset:], w2, stride=stride)
    assert y1.shape == y2.shape == (4, 3, (5 - offset + stride - 1) // stride,
                                    (7 - offset + stride - 1) // stride)
    assert y1.is_contiguous(memory_format=layout)  # the layout is kept
    torch.testing.assert_close(y1, y2)
    grad = torch.randn(y1.shape, generator=g)
    y1.backward(grad)
    y2.backward(grad)
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(w1.grad, w2.grad)


def test_conv1x1_keeps_conv2d_parameters() -> None:
    conv = Conv1x1(4, 8)
    assert list(conv.state_dict()) == ["weight"] and conv.weight.shape == (8, 4, 1, 1)
    x = torch.randn(2, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight))


@pytest.mark.parametrize("size", [8, 7])
def test_factorized_reduce_matmul_path_matches_convolutions(size: int) -> None:
    g = torch.Generator().manual_seed(1)
    reduce = FactorizedReduce(6, 8)
    x = torch.randn(4, 6, size, size, generator=g)
    x_cl = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    x_nchw = x.clone().requires_grad_()  # channels first: the strided convolutions
    y_cl, y_nchw = reduce(x_cl), reduce(x_nchw)
    assert y_cl.shape == (4, 8, (size + 1) // 2, (size + 1) // 2)
    torch.testing.assert_close(y_cl, y_nchw)
    grad = torch.randn(y_cl.shape, generator=g)
    y_cl.backward(grad)
    y_nchw.backward(grad)
    torch.testing.assert_close(x_cl.grad, x_nchw.grad)
