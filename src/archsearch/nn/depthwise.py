"""Depthwise convolution whose 5x5 weight gradient comes from a native kernel on the CPU.

``depthwise_conv2d(x, w, stride, padding)`` is ``F.conv2d(x, w, None, stride, padding,
groups=C)``. The forward pass and the input gradient are PyTorch's (oneDNN). On the CPU, for a
float32 channels_last input and a 5x5 filter over a multiple of 16 channels, the weight
gradient comes from ``native.DW5_WGRAD`` instead of oneDNN's general grouped kernel, which
it uses for any depthwise filter wider than 3 (~10x slower than its 3x3 depthwise kernel).
Alone the native gradient is 7-9x faster than oneDNN's at 16-64 channels (one thread); in the
ENAS micro training step it saves ~5% (BENCHMARKS.md, speed against NNI).
Anything else, or no C compiler, goes to ``F.conv2d``. A dilated filter at a stride equal
to its dilation (DARTS' ``dil_conv`` on a reduction cell's inputs) runs undilated over the one
phase of the input it reads (:func:`phase_applies`). Same values up to float rounding; a
backward pass that builds a graph (double backward) uses PyTorch's differentiable path.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from archsearch.nn import native


def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor, stride: int = 1,
                     padding: int = 0, dilation: int = 1) -> torch.Tensor:
    """x (B, C, H, W), weight (C, 1, k, k) -> (B, C, H', W')."""
    if phase_applies(x, weight, stride, padding, dilation):
        # a filter dilated by d read every d-th pixel reads only the pixels of one phase: an
        # undilated filter over x[::d, ::d] (a copy at 1/d^2 of the size), at stride 1; sliced
        # as (B, H, W, C), so that the gradient it sends back is channels_last, as x (a
        # (B, C, H, W) slice sends back a channels-first one, and every sum with it is slow)
        rows = x.permute(0, 2, 3, 1)[:, ::dilation, ::dilation]  # (B, H/d, W/d, C)
        phase = rows.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        return depthwise_conv2d(phase, weight, 1, padding // dilation, 1)
    if native_weight_grad_applies(x, weight):
        return DepthwiseConv5.apply(x, weight, stride, padding, dilation)
    return F.conv2d(x, weight, None, stride, padding, dilation, weight.shape[0])


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(c, c, kernel, stride, padding, dilation, groups=c, bias=False)`` (same
    parameters and state-dict keys) through :func:`depthwise_conv2d`; ``forward(x, stride)``
    may override the stride (cells whose ops run at stride 1 or 2 share one filter)."""

    def __init__(self, c: int, kernel: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1) -> None:
        super().__init__(c, c, kernel, stride, padding, dilation, groups=c, bias=False)

    def forward(self, x: torch.Tensor, stride: int | None = None) -> torch.Tensor:
        return depthwise_conv2d(x, self.weight, stride or self.stride[0], self.padding[0],
                                self.dilation[0])


def phase_applies(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                  dilation: int) -> bool:
    """Whether a CPU convolution at stride = dilation = d > 1 runs as an undilated one over
    one phase of x (DARTS' dilated convolutions on a reduction cell's inputs): the same sums,
    4-7x faster forward and backward than oneDNN's strided dilated depthwise kernel at 16-64
    channels, whose backward is the slowest kernel of a DARTS search step. Only where both
    give the same output size (``same`` padding, d(k - 1) / 2)."""
    k = weight.shape[-1]
    return (x.device.type == "cpu" and stride == dilation > 1 and x.dim() == 4
            and padding == dilation * (k - 1) // 2 and padding % dilation == 0
            and weight.shape[-2] == k)


def native_weight_grad_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`depthwise_conv2d` takes the native weight gradient (never while tracing
    or compiling, where a Python autograd Function has no graph form)."""
    return (weight.requires_grad and torch.is_grad_enabled() and x.device.type == "cpu"
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
            and x.dtype == weight.dtype == torch.float32 and x.dim() == 4
            and weight.shape[1:] == (1, 5, 5) and weight.shape[0] % 16 == 0
            and x.is_contiguous(memory_format=torch.channels_last)
            and native.load("dw5_wgrad") is not None)


class DepthwiseConv5(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                dilation: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.conv = (stride, padding, dilation)
        return F.conv2d(x, weight, None, stride, padding, dilation, weight.shape[0])

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.conv
        need_x, need_w = ctx.needs_input_grad[:2]
        args = ([stride] * 2, [padding] * 2, [dilation] * 2, False, [0, 0], weight.shape[0])
        if torch.is_grad_enabled():  # building a graph of the gradient: differentiable ops
            gx, gw, _ = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, *args, [need_x, need_w, False])
            return gx, gw, None, None, None
        gx = None
        if need_x:
            gx = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, *args, [True, False, False])[0]
        gw = weight_grad(x, grad_out, stride, padding, dilation) if need_w else None
        return gx, gw, None, None, None


def weight_grad(x: torch.Tensor, grad_out: torch.Tensor, stride: int, padding: int,
                dilation: int) -> torch.Tensor:
    """The 5x5 depthwise filter's gradient (C, 1, 5, 5) from the native kernel, on the
    calling thread (splitting the batch over a thread pool beside PyTorch's own threads made
    the ENAS training step slower, not faster)."""
    b, c, h, w = x.shape
    xc = x.permute(0, 2, 3, 1).contiguous()  # (B, H, W, C): a view if channels_last
    g = grad_out.permute(0, 2, 3, 1).contiguous()  # (B, OH, OW, C)
    out = torch.empty(c, 25, dtype=torch.float32)
    native.call("dw5_wgrad", "dw5_wgrad", xc, g, out,
                sizes=(b, h, w, c, g.shape[1], g.shape[2], stride, padding, dilation))
    return out.view(c, 1, 5, 5)
