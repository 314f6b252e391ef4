"""The native 1x1 matmul gives F.linear's values and gradients, on dense and strided pixels."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from archsearch.nn import channel_matmul as cm
from archsearch.nn import native
from archsearch.nn.ops import FactorizedReduce, pointwise

needs_native = pytest.mark.skipif(native.load("channel_matmul") is None,
                                  reason="no C compiler: the native kernel is not built")


def rows_of(shape: tuple[int, int, int, int], stride: int, offset: int,
            g: torch.Generator) -> torch.Tensor:
    """(B, H', W', C) pixel rows of a channels_last map: every ``stride``-th row and column."""
    x = torch.randn(shape, generator=g).contiguous(memory_format=torch.channels_last)
    return x.permute(0, 2, 3, 1)[:, offset::stride, offset::stride]


@needs_native
@pytest.mark.parametrize(("c_in", "c_out"), [(16, 16), (32, 16), (16, 48), (64, 64), (80, 32)])
@pytest.mark.parametrize(("stride", "offset"), [(1, 0), (2, 0), (2, 1)])
def test_values_and_gradients_match_linear(c_in: int, c_out: int, stride: int,
                                           offset: int) -> None:
    g = torch.Generator().manual_seed(c_in + c_out + stride + offset)
    rows = rows_of((3, c_in, 7, 9), stride, offset, g)  # 9 columns: a ragged group of 4
    weight = torch.randn(c_out, c_in, generator=g)
    assert cm.native_applies(rows, weight)
    r1, w1 = rows.detach().requires_grad_(), weight.clone().requires_grad_()
    r2, w2 = rows.detach().requires_grad_(), weight.clone().requires_grad_()
    y1, y2 = cm.channel_matmul(r1, w1), F.linear(r2, w2)
    assert y1.grad_fn is not None and type(y1.grad_fn).__name__ == "ChannelMatmulBackward"
    torch.testing.assert_close(y1, y2)
    grad = torch.randn(y1.shape, generator=g)
    y1.backward(grad)
    y2.backward(grad)
    torch.testing.assert_close(r1.grad, r2.grad)
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-4, atol=1e-4)


@needs_native
def test_weight_gradient_over_many_chunks() -> None:
    """Rows in more chunks than threads (the chunk size: CHUNK_BYTES) still sum to all rows."""
    g = torch.Generator().manual_seed(3)
    rows = rows_of((32, 16, 32, 32), 1, 0, g)
    grad = torch.randn(32, 32, 32, 16, generator=g)
    assert (rows.numel() + grad.numel()) * 4 > 4 * cm.CHUNK_BYTES  # several chunks
    expected = (grad.flatten(0, 2).double().t() @ rows.flatten(0, 2).double()).float()
    torch.testing.assert_close(cm.gram(grad, rows), expected, rtol=1e-5, atol=1e-3)


@needs_native
def test_only_the_wanted_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counted(name: str):
        kernel = getattr(cm, name)
        return lambda *a: calls.append(name) or kernel(*a)

    for name in ("gram", "matmul_rows"):
        monkeypatch.setattr(cm, name, counted(name))
    g = torch.Generator().manual_seed(4)
    rows = rows_of((2, 16, 4, 4), 1, 0, g)
    weight = torch.randn(16, 16, generator=g, requires_grad=True)
    (d_weight,) = torch.autograd.grad(cm.channel_matmul(rows, weight).sum(), [weight])
    assert calls == ["matmul_rows", "gram"]  # forward, then the weight's gradient only
    torch.testing.assert_close(d_weight, rows.sum((0, 1, 2)).expand(16, 16))
    calls.clear()
    r = rows.detach().requires_grad_()
    (d_rows,) = torch.autograd.grad(cm.channel_matmul(r, weight.detach()).sum(), [r])
    assert calls == ["matmul_rows", "matmul_rows"]  # forward, then the rows' gradient only
    torch.testing.assert_close(d_rows, weight.detach().sum(0).expand_as(r))


@needs_native
def test_double_backward() -> None:
    """A backward that builds a graph (the HVP tests' double backward) goes through PyTorch."""
    g = torch.Generator().manual_seed(5)
    rows = rows_of((2, 16, 3, 5), 1, 0, g).detach().requires_grad_()
    weight = torch.randn(16, 16, generator=g, requires_grad=True)
    (d_rows,) = torch.autograd.grad(cm.channel_matmul(rows, weight).square().sum(), [rows],
                                    create_graph=True)
    (dd, ) = torch.autograd.grad(d_rows.sum(), [weight])
    r2, w2 = rows.detach().requires_grad_(), weight.detach().requires_grad_()
    (e_rows,) = torch.autograd.grad(F.linear(r2, w2).square().sum(), [r2], create_graph=True)
    (ee,) = torch.autograd.grad(e_rows.sum(), [w2])
    torch.testing.assert_close(dd, ee)


def test_what_the_kernel_does_not_take_goes_to_linear() -> None:
    g = torch.Generator().manual_seed(6)
    dense = rows_of((2, 16, 4, 4), 1, 0, g)
    assert not cm.native_applies(dense[..., :8], torch.randn(16, 8))  # 8 channels
    assert not cm.native_applies(dense, torch.randn(24, 16))  # 24 output channels
    assert not cm.native_applies(dense.double(), torch.randn(16, 16).double())
    strided = torch.randn(2, 4, 4, 32, generator=g)[..., ::2]  # 16 channels, not contiguous
    assert not cm.native_applies(strided, torch.randn(16, 16))
    odd = torch.randn(2, 4, 4, 12, generator=g)
    w = torch.randn(5, 12, generator=g)
    torch.testing.assert_close(cm.channel_matmul(odd, w), F.linear(odd, w))


@needs_native
def test_tracing_goes_to_linear() -> None:
    rows = rows_of((1, 16, 4, 4), 1, 0, torch.Generator().manual_seed(7))
    weight = torch.randn(16, 16)
    traced = torch.jit.trace(lambda r: cm.channel_matmul(r, weight), rows.contiguous())
    assert "linear" in str(traced.graph)
    torch.testing.assert_close(traced(rows.contiguous()), F.linear(rows, weight))


@needs_native
@pytest.mark.parametrize("size", [8, 7])
def test_pointwise_and_factorized_reduce_run_natively(size: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(cm.ChannelMatmul, "apply",
                        lambda *a, _apply=cm.ChannelMatmul.apply: calls.append(1) or _apply(*a))
    g = torch.Generator().manual_seed(8)
    x = torch.randn(2, 16, size, size, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.randn(32, 16, 1, 1, generator=g)
    torch.testing.assert_close(pointwise(x, w), F.conv2d(x, w))
    reduce = FactorizedReduce(16, 32)
    torch.testing.assert_close(reduce(x), reduce(x.contiguous()))
    # one pointwise, FactorizedReduce's two strided halves (odd sizes: its padded convolutions)
    assert len(calls) == (3 if size % 2 == 0 else 1)
