"""The depthwise convolution with the native 5x5 weight gradient gives the convolution's values
and gradients, falls back where the kernel does not apply, and survives a failed build."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from archsearch.nn import native
from archsearch.nn.depthwise import (
    DepthwiseConv2d,
    depthwise_conv2d,
    native_weight_grad_applies,
    phase_applies,
)

needs_kernel = pytest.mark.skipif(native.load("dw5_wgrad") is None,
                                  reason="no C compiler here: the native kernel cannot be built")


def inputs(b: int, c: int, h: int, w: int, k: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c, 1, k, k, generator=g)
    return x.requires_grad_(), weight.requires_grad_()


def assert_same_as_conv2d(x, w, stride: int, pad: int, dilation: int) -> None:
    """depthwise_conv2d's output and gradients equal F.conv2d's (groups = channels)."""
    y = depthwise_conv2d(x, w, stride, pad, dilation)
    ref = F.conv2d(x, w, None, stride, pad, dilation, x.shape[1])
    torch.testing.assert_close(y, ref)
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))
    gx, gw = torch.autograd.grad(y, (x, w), grad)
    rx, rw = torch.autograd.grad(ref, (x, w), grad)
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gw, rw, rtol=1e-4, atol=1e-4)  # summation order differs


@needs_kernel
@pytest.mark.parametrize(("shape", "stride", "dilation"), [
    ((4, 16, 12, 12), 1, 1), ((3, 32, 9, 7), 1, 1), ((4, 16, 12, 12), 2, 1),
    ((2, 16, 11, 13), 2, 1), ((2, 48, 10, 10), 1, 2),
])
def test_matches_conv2d_forward_and_backward(shape, stride: int, dilation: int) -> None:
    x, w = inputs(*shape)
    assert native_weight_grad_applies(x, w)
    pad = 2 * dilation
    assert_same_as_conv2d(x, w, stride, pad, dilation)


@needs_kernel
def test_double_backward_matches_conv2d() -> None:
    """A gradient that is differentiated again (GraSP's Hessian product) stays exact."""
    x, w = inputs(2, 16, 8, 8)

    def grad_norm(conv) -> torch.Tensor:
        (gw,) = torch.autograd.grad(conv().square().sum(), (w,), create_graph=True)
        return torch.autograd.grad(gw.square().sum(), (x, w))

    ours = grad_norm(lambda: depthwise_conv2d(x, w, 1, 2))
    ref = grad_norm(lambda: F.conv2d(x, w, None, 1, 2, 1, 16))
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("case", ["3x3", "8 channels", "NCHW", "float64", "no grad"])
def test_falls_back_where_the_kernel_does_not_apply(case: str) -> None:
    x, w = inputs(2, 8 if case == "8 channels" else 16, 6, 6, k=3 if case == "3x3" else 5)
    if case == "NCHW":
        x = x.detach().contiguous().requires_grad_()
    if case == "float64":
        x, w = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    with torch.set_grad_enabled(case != "no grad"):
        assert not native_weight_grad_applies(x, w)
        pad = (w.shape[-1] - 1) // 2
        torch.testing.assert_close(depthwise_conv2d(x, w, 1, pad),
                                   F.conv2d(x, w, None, 1, pad, 1, w.shape[0]))


def test_module_keeps_conv2d_parameters_and_takes_a_stride() -> None:
    conv = DepthwiseConv2d(16, 5, padding=2)
    assert list(conv.state_dict()) == ["weight"] and conv.weight.shape == (16, 1, 5, 5)
    x = torch.randn(2, 16, 8, 8).contiguous(memory_format=torch.channels_last)
    assert conv(x).shape == (2, 16, 8, 8) and conv(x, 2).shape == (2, 16, 4, 4)


def test_failed_build_falls_back_with_a_warning(monkeypatch, tmp_path: Path, caplog) -> None:
    monkeypatch.setenv("ARCHSEARCH_CACHE", str(tmp_path))
    monkeypatch.setitem(native.SOURCES, "dw5_wgrad", "this is not C;")
    native.load.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="archsearch.nn.native"):
            assert native.load("dw5_wgrad") is None
        assert "could not build the native kernel dw5_wgrad" in caplog.text
        assert list(tmp_path.iterdir()) == []  # nothing half-written left in the cache
        x, w = inputs(2, 16, 6, 6)
        assert not native_weight_grad_applies(x, w)
    finally:
        native.load.cache_clear()


def test_disabled_by_environment(monkeypatch) -> None:
    monkeypatch.setenv("ARCHSEARCH_NATIVE", "0")
    native.load.cache_clear()
    try:
        assert native.load("dw5_wgrad") is None
    finally:
        native.load.cache_clear()


@needs_kernel
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TorchScript, still asked for
def test_traces_to_torchscript_through_conv2d() -> None:
    conv = DepthwiseConv2d(16, 5, padding=2)
    x = torch.randn(2, 16, 8, 8).contiguous(memory_format=torch.channels_last)
    traced = torch.jit.trace(conv, x)
    torch.testing.assert_close(traced(x), conv(x))


@pytest.mark.parametrize("shape", [(2, 16, 12, 12), (3, 32, 11, 9), (2, 8, 7, 7)])
@pytest.mark.parametrize("kernel", [3, 5])
def test_dilated_strided_runs_on_one_phase_with_the_same_values(shape, kernel: int) -> None:
    x, w = inputs(*shape, k=kernel)
    pad = kernel - 1  # dilation 2, "same" padding: DARTS' dil_conv
    assert phase_applies(x, w, 2, pad, 2)
    assert not phase_applies(x, w, 1, pad, 2) and not phase_applies(x, w, 2, pad + 2, 2)
    assert_same_as_conv2d(x, w, 2, pad, 2)


def test_the_phase_sends_a_channels_last_gradient_back() -> None:
    """The one-phase path's input gradient keeps the input's channels_last layout: a
    channels-first gradient from it made every sum with the input's other gradients (a DARTS
    reduction cell's edges) a slow mixed-layout add."""
    x, w = inputs(2, 16, 12, 12, k=3)
    (gx,) = torch.autograd.grad(depthwise_conv2d(x, w, 2, 2, 2).sum(), (x,))
    assert gx.is_contiguous(memory_format=torch.channels_last)
