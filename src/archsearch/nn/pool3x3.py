"""3x3 max and average pooling (padding 1, stride 1 or 2), with native kernels on the CPU.

``max_pool3x3(x, stride)`` is ``F.max_pool2d(x, 3, stride, 1)``; ``avg_pool3x3(x, stride)`` is
``F.avg_pool2d(x, 3, stride, 1, count_include_pad=False)``. On the CPU, for a float32
channels_last input over a multiple of 16 channels, both passes of either come from
``native.POOL3`` instead: PyTorch's max pooling there writes an int64 index for every output
value and takes ~3.5x as long as its average pooling (~7% of a DARTS search step), and both
of its backward passes zero-fill and scatter; the native ones keep each window's winning tap
in an int32 and gather (BENCHMARKS.md). The same values, and gradients up to the order of
float summation (max: ties go to the window's first tap in row-major order, as in PyTorch).
Anything else, no C compiler, or a backward pass that builds a graph (double backward) goes
through PyTorch (max pooling: keeping no indices on the CPU, :mod:`archsearch.nn.lean_max_pool`).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from archsearch.nn import native
from archsearch.nn.lean_max_pool import lean_max_pool2d


def max_pool3x3(x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """x (B, C, H, W) -> (B, C, H', W'), H' = (H - 1) // stride + 1."""
    if native_applies(x, stride):
        return MaxPool3x3.apply(x, stride)
    return lean_max_pool2d(x, 3, stride, 1)


def avg_pool3x3(x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """x (B, C, H, W) -> (B, C, H', W'): each window's mean over its real pixels."""
    if native_applies(x, stride):
        return AvgPool3x3.apply(x, stride)
    return F.avg_pool2d(x, 3, stride, 1, count_include_pad=False)


def native_applies(x: torch.Tensor, stride: int) -> bool:
    """Whether the native kernels take this pooling (never while tracing or compiling, where a
    Python autograd Function has no graph form)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
            and stride in (1, 2) and x.shape[1] % 16 == 0
            and x.is_contiguous(memory_format=torch.channels_last)
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
            and native.load("pool3") is not None)


def _output(x: torch.Tensor, stride: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """An empty channels_last output for x pooled at ``stride``, and the kernels' sizes."""
    b, c, h, w = x.shape
    oh, ow = (h - 1) // stride + 1, (w - 1) // stride + 1
    out = torch.empty(b, c, oh, ow, memory_format=torch.channels_last)
    return out, (b, h, w, c, oh, ow, stride)


def _input_grad(kernel: str, grad_out: torch.Tensor, like: torch.Tensor,
                *extra: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """The input's gradient (shaped as ``like``, channels_last) from a backward kernel."""
    g = grad_out.contiguous(memory_format=torch.channels_last)
    gx = torch.empty_like(like, device=g.device, memory_format=torch.channels_last)
    native.call("pool3", kernel, g, *extra, gx, sizes=sizes)
    return gx


class MaxPool3x3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, stride: int) -> torch.Tensor:
        out, sizes = _output(x, stride)
        tap = torch.empty(out.shape[0], *out.shape[2:], out.shape[1],
                          dtype=torch.int32)  # (B, H', W', C): each window's winning tap, 0-8
        native.call("pool3", "maxpool3_fwd", x, out, tap, sizes=sizes)
        ctx.save_for_backward(x, tap)
        ctx.sizes = sizes
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        x, tap = ctx.saved_tensors
        stride = ctx.sizes[-1]
        if torch.is_grad_enabled():  # building a graph of the gradient: PyTorch's own ops
            with torch.no_grad():
                _, indices = F.max_pool2d(x, 3, stride, 1, return_indices=True)
            return torch.ops.aten.max_pool2d_with_indices_backward(
                grad_out, x, [3, 3], [stride] * 2, [1, 1], [1, 1], False, indices), None
        return _input_grad("maxpool3_bwd", grad_out, x, tap, sizes=ctx.sizes), None


class AvgPool3x3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, stride: int) -> torch.Tensor:
        out, sizes = _output(x, stride)
        native.call("pool3", "avgpool3_fwd", x, out, sizes=sizes)
        ctx.x_meta = torch.empty_like(x, device="meta")  # the input's shape and layout
        ctx.sizes = sizes
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        stride = ctx.sizes[-1]
        if torch.is_grad_enabled():  # building a graph of the gradient: PyTorch's own ops
            return torch.ops.aten.avg_pool2d_backward(
                grad_out, torch.empty_like(ctx.x_meta, device=grad_out.device), [3, 3],
                [stride] * 2, [1, 1], False, False, None), None
        return _input_grad("avgpool3_bwd", grad_out, ctx.x_meta, sizes=ctx.sizes), None
