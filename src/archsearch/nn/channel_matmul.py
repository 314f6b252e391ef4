"""A 1x1 convolution over a channels_last map as one matmul over its channel axis, natively.

:func:`archsearch.nn.ops.pointwise` turns a channels_last 1x1 convolution into a matmul of the
(B, H, W, C_in) pixel rows with the (C_out, C_in) weight. At the 16-64 channels of searched
cells these are tall, skinny matrices on which MKL's sgemm reads and writes memory at about
half the speed a plain pass does; the 1x1 matmuls were ~13% of a relaxed NB201 search step.
:func:`channel_matmul` runs the forward and the input's gradient through ``native.CHANNEL_MATMUL``
(eight pixels at a time share each weight row, 16 output channels to a vector) and the weight's
gradient as per-chunk sums of ``g^T x`` over cache-sized chunks of image rows (register tiles of
up to 16 x 16 channels), added in float64. ``benchmarks/channel_matmul_speed.py`` times them
against MKL.

The native kernel takes float32 CPU pixel rows whose channels are contiguous (the pixels may be
strided: FactorizedReduce's every other row and column) with C_in and C_out multiples of 16 up
to :data:`MAX_CHANNELS`; anything else, no C compiler, tracing, or a backward that builds a
graph goes through ``F.linear`` (the same values up to float rounding).
"""

from __future__ import annotations

import ctypes

import torch
from torch.nn import functional as F

from archsearch.nn import native

MAX_CHANNELS = 256  # beyond this MKL's blocking wins; the kernel holds no weight in registers
CHUNK_BYTES = 1 << 17  # x and g of one chunk of the weight gradient's rows: about L2's share


def channel_matmul(rows: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.linear(rows, weight)``: rows (B, H, W, C_in) whose last axis is contiguous, weight
    (C_out, C_in); the output (B, H, W, C_out) dense."""
    if not native_applies(rows, weight):
        return F.linear(rows, weight)
    return ChannelMatmul.apply(rows, weight)


def native_applies(rows: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the native kernel takes these rows and weight (never while tracing or
    compiling, where a Python autograd Function has no graph form)."""
    c_out, c_in = weight.shape if weight.dim() == 2 else (0, 0)
    return (rows.device.type == "cpu" and weight.device.type == "cpu"
            and rows.dtype == weight.dtype == torch.float32 and rows.dim() == 4
            and rows.shape[3] == c_in and rows.stride(3) == 1
            and all(s >= 0 for s in rows.stride())
            and 0 < c_in <= MAX_CHANNELS and 0 < c_out <= MAX_CHANNELS
            and c_in % 16 == 0 and c_out % 16 == 0
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
            and native.load("channel_matmul") is not None)


def pixel_sizes(rows: torch.Tensor) -> tuple[tuple[ctypes.c_long, ...],
                                             tuple[ctypes.c_long, ...]]:
    """(B, H, W) and the pixels' strides (b, i, j), as the kernels take them."""
    b, h, w, _ = rows.shape
    sb, si, sj, _ = rows.stride()
    return tuple(ctypes.c_long(v) for v in (b, h, w)), tuple(
        ctypes.c_long(v) for v in (sb, si, sj))


def c_ptr(x: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(x.data_ptr())


def matmul_rows(rows: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """rows (B, H, W, K) @ m (K, N), dense (B, H, W, N)."""
    b, h, w, k = rows.shape
    m = m.contiguous()
    out = rows.new_empty(b, h, w, m.shape[1])
    shape, strides = pixel_sizes(rows)
    native.load("channel_matmul").channel_matmul(  # type: ignore[union-attr]
        c_ptr(rows), c_ptr(m), c_ptr(out), *shape, ctypes.c_long(k),
        ctypes.c_long(m.shape[1]), *strides)
    return out


def gram(g: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """sum over pixels of g[pixel]^T rows[pixel]: (N, K), g dense (B, H, W, N)."""
    b, h, w, k = rows.shape
    n = g.shape[3]
    chunks = max(1, min(b * h, -(-(b * h * w * (k + n) * 4) // CHUNK_BYTES)))
    part = rows.new_empty(chunks, n, k)
    shape, strides = pixel_sizes(rows)
    native.load("channel_matmul").channel_gram(  # type: ignore[union-attr]
        c_ptr(g), c_ptr(rows), c_ptr(part), *shape, ctypes.c_long(k), ctypes.c_long(n),
        *strides, ctypes.c_long(chunks))
    return part.sum(0, dtype=torch.float64).float()


class ChannelMatmul(torch.autograd.Function):
    """rows (B, H, W, K) @ weight (N, K)^T."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(rows, weight)
        return matmul_rows(rows, weight.detach().t())

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        rows, weight = ctx.saved_tensors
        wants_rows, wants_weight = ctx.needs_input_grad
        if torch.is_grad_enabled():  # building a graph of the gradient: PyTorch's own ops
            return (g @ weight if wants_rows else None,
                    g.flatten(0, 2).t() @ rows.flatten(0, 2) if wants_weight else None)
        g = g.contiguous()
        return (matmul_rows(g, weight.detach()) if wants_rows else None,
                gram(g, rows) if wants_weight else None)
