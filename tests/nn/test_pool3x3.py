"""The native 3x3 max and average pooling give PyTorch's values and gradients (max: ties to the
window's first tap), fall back where they do not apply, and keep double backward exact."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from archsearch.nn import native
from archsearch.nn.pool3x3 import avg_pool3x3, max_pool3x3, native_applies

needs_kernel = pytest.mark.skipif(native.load("pool3") is None,
                                  reason="no C compiler here: the native kernels cannot be built")

OURS = {"max": max_pool3x3, "avg": avg_pool3x3}
REFERENCE = {
    "max": lambda x, s: F.max_pool2d(x, 3, s, 1),
    "avg": lambda x, s: F.avg_pool2d(x, 3, s, 1, count_include_pad=False),
}


def channels_last(*shape: int, seed: int = 0) -> torch.Tensor:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    return x.contiguous(memory_format=torch.channels_last)


def assert_same_as_pytorch(kind: str, x: torch.Tensor, stride: int) -> None:
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, ref = OURS[kind](a, stride), REFERENCE[kind](b, stride)
    torch.testing.assert_close(y, ref, rtol=0, atol=0)
    assert y.is_contiguous(memory_format=torch.channels_last)
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))
    (ga,), (gb,) = torch.autograd.grad(y, (a,), grad), torch.autograd.grad(ref, (b,), grad)
    torch.testing.assert_close(ga, gb)  # up to the order of summation
    assert ga.is_contiguous(memory_format=torch.channels_last)


@needs_kernel
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize(("shape", "stride"), [
    ((4, 16, 12, 12), 1), ((3, 32, 9, 7), 1), ((4, 16, 12, 12), 2), ((2, 16, 11, 13), 2),
    ((2, 48, 1, 1), 1), ((2, 16, 2, 3), 2), ((1, 16, 5, 1), 2),
])
def test_matches_pytorch_forward_and_backward(kind: str, shape, stride: int) -> None:
    x = channels_last(*shape)
    assert native_applies(x, stride)
    assert_same_as_pytorch(kind, x, stride)


@needs_kernel
@pytest.mark.parametrize("stride", [1, 2])
def test_max_ties_go_to_the_first_tap_and_nan_wins(stride: int) -> None:
    x = channels_last(2, 16, 8, 8)
    x[0, :, :4, :4] = 0.0  # plateaus: every window over them ties
    x[1, :, 2:6, 2:6] = torch.randn(16, 4, 4).round()  # many small ties
    assert_same_as_pytorch("max", x, stride)
    x[0, 3, 5, 5] = float("nan")
    y, ref = max_pool3x3(x, stride), F.max_pool2d(x, 3, stride, 1)
    torch.testing.assert_close(y, ref, equal_nan=True)


@needs_kernel
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_double_backward_matches_pytorch(kind: str) -> None:
    """A gradient differentiated again (GraSP's Hessian product) goes through PyTorch's ops."""
    x = channels_last(2, 16, 6, 6)

    def second(pool) -> torch.Tensor:
        a = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(pool(a).square().sum(), (a,), create_graph=True)
        return torch.autograd.grad(g.square().sum(), (a,))[0]

    torch.testing.assert_close(second(lambda a: OURS[kind](a, 1)),
                               second(lambda a: REFERENCE[kind](a, 1)))


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", ["8 channels", "NCHW", "float64", "stride 3"])
def test_falls_back_where_the_kernel_does_not_apply(kind: str, case: str) -> None:
    x = channels_last(2, 8 if case == "8 channels" else 16, 7, 7)
    stride = 3 if case == "stride 3" else 1
    if case == "NCHW":
        x = x.contiguous()
    if case == "float64":
        x = x.double()
    assert not native_applies(x, stride)
    torch.testing.assert_close(OURS[kind](x, stride), REFERENCE[kind](x, stride))


def test_disabled_by_environment(monkeypatch) -> None:
    monkeypatch.setenv("ARCHSEARCH_NATIVE", "0")
    native.load.cache_clear()
    try:
        x = channels_last(2, 16, 6, 6)
        assert not native_applies(x, 1)
        torch.testing.assert_close(max_pool3x3(x), F.max_pool2d(x, 3, 1, 1))
    finally:
        native.load.cache_clear()


@needs_kernel
def test_a_compiler_without_openmp_still_builds_the_kernels(monkeypatch, tmp_path) -> None:
    """Where ``-fopenmp`` fails (a compiler without OpenMP), the kernels build without it and
    run on the calling thread, with the same values."""
    monkeypatch.setenv("ARCHSEARCH_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "OPENMP", "-fno-such-option-here")
    native.load.cache_clear()
    try:
        assert native.load("pool3") is not None
        x = channels_last(2, 16, 6, 6)
        assert native_applies(x, 1)
        assert_same_as_pytorch("max", x, 1)
    finally:
        native.load.cache_clear()
