"""The 1x1 convolution's matmul path gives the convolution's values and gradients."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from archsearch.nn.ops import Conv1x1, pointwise


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_pointwise_matches_conv2d_forward_and_backward(layout: torch.memory_format) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, 5, 7, generator=g).contiguous(memory_format=layout)
    w = torch.randn(3, 6, 1, 1, generator=g)
    x1, w1 = x.clone().requires_grad_(), w.clone().requires_grad_()
    x2, w2 = x.clone().requires_grad_(), w.clone().requires_grad_()
    y1, y2 = pointwise(x1, w1), F.conv2d(x2, w2)
    assert y1.shape == (4, 3, 5, 7)
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
