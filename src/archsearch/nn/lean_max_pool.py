"""Max pooling that keeps no indices for its backward pass.

PyTorch's max pooling saves an int64 index per output value (twice the output's float32
bytes) besides its input. ``lean_max_pool2d`` saves only the input, which is usually kept
anyway (a supernet's node feeds several ops, and a PC-DARTS edge's slice is a view of it),
and finds each window's winner again in the backward pass: one more pooling there, for ~53 MiB
less of a PC-DARTS search step's saved memory at 16 channels and 5 cells (BENCHMARKS.md).
Values and gradients are PyTorch's own (the same kernels, the same ties); a backward pass
that builds a graph (double backward) records PyTorch's ops as usual.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def lean_max_pool2d(x: torch.Tensor, kernel: int, stride: int, padding: int = 0,
                    ceil_mode: bool = False) -> torch.Tensor:
    """``F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)`` on x (B, C, H, W);
    on the CPU, with a gradient to keep, through :class:`LeanMaxPool` (never while tracing or
    compiling, where a Python autograd Function has no graph form)."""
    if (x.device.type != "cpu" or not torch.is_grad_enabled() or not x.requires_grad
            or torch.jit.is_tracing() or torch.compiler.is_compiling()):
        return F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)
    return LeanMaxPool.apply(x, kernel, stride, padding, ceil_mode)


class LeanMaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: int, stride: int, padding: int,
                ceil_mode: bool) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.window = (kernel, stride, padding, ceil_mode)
        return F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        kernel, stride, padding, ceil_mode = ctx.window
        with torch.no_grad():  # the winners again, instead of kept
            _, indices = F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode,
                                      return_indices=True)
        grad_in = torch.ops.aten.max_pool2d_with_indices_backward(
            grad_out, x, [kernel] * 2, [stride] * 2, [padding] * 2, [1, 1], ceil_mode, indices)
        return grad_in, None, None, None, None
