"""A relaxed node's sum, sum_t w_t * x_t (w_t None: 1), in one pass over memory on the CPU.

A DARTS-style node adds every op output of every incoming edge (a DARTS cell's last node: 35
maps). PyTorch adds two maps per operator and multiplies before each weighted add, a pass over
memory each, forward and backward. :func:`weighted_sum` reads the maps once (``native.WSUM``);
its backward returns the output's gradient itself to every unweighted map, writes ``w_t * g``
for the weighted ones and their weights' gradients ``<g, x_t>`` in the same pass. The
supernets' nodes whose ops end in BatchNorms go to :mod:`archsearch.nn.normalized_sum`
instead; this sum takes the rest (NB201's pooling inputs, a node whose BatchNorms that kernel
cannot take, once PyTorch has normalised them).

The native kernel takes float32 CPU maps of one shape and one dense layout (contiguous or
channels_last); anything else (another device or dtype, broadcasting, a scalar term), no C
compiler, tracing, or a backward that builds a graph goes through PyTorch's mul and add, with
the same values: the same sums in the same order, each product rounded before its add.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import torch

from archsearch.nn import native

BLOCK = 4096  # floats per block of the kernels (WSUM_BLOCK)


def weighted_sum(maps: Sequence[torch.Tensor],
                 weights: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """sum_t weights[t] * maps[t], in order (a weight None: the map itself; weights 0-d)."""
    if not maps:
        raise ValueError("weighted_sum of no maps")
    if not native_applies(maps, weights):
        return reference_sum(maps, weights)
    scaled = tuple(t for t, w in enumerate(weights) if w is not None)
    w = (torch.stack([weights[t] for t in scaled]) if scaled  # type: ignore[misc]
         else maps[0].new_empty(0))
    return WeightedSum.apply(w, scaled, *maps)


def reference_sum(maps: Sequence[torch.Tensor],
                  weights: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """PyTorch's chain of products and adds (the fallback and the tests' reference)."""
    total = maps[0] if weights[0] is None else weights[0] * maps[0]
    for x, w in zip(maps[1:], weights[1:]):
        total = total + (x if w is None else w * x)
    return total


def native_applies(maps: Sequence[torch.Tensor], weights: Sequence[torch.Tensor | None]) -> bool:
    """Whether the native kernels take these maps (never while tracing or compiling, where a
    Python autograd Function has no graph form)."""
    first = maps[0]
    return (len(maps) > 1 and first.device.type == "cpu" and first.dtype == torch.float32
            and first.dim() > 0 and dense_format(first) is not None
            and all(x.shape == first.shape and x.stride() == first.stride()
                    and x.dtype == first.dtype and x.device == first.device for x in maps)
            and all(w is None or (w.dim() == 0 and w.dtype == first.dtype
                                  and w.device.type == "cpu") for w in weights)
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
            and native.load("wsum") is not None)


def dense_format(x: torch.Tensor) -> torch.memory_format | None:
    """The dense layout x is in (contiguous or, for a 4-d map, channels_last), else None."""
    if x.is_contiguous():
        return torch.contiguous_format
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return None


def pointers(tensors: Sequence[torch.Tensor | None]) -> ctypes.Array:
    """A C array of the tensors' data pointers (None: NULL)."""
    return (ctypes.c_void_p * len(tensors))(*(None if t is None else t.data_ptr()
                                             for t in tensors))


class WeightedSum(torch.autograd.Function):
    """Maps ``scaled`` (indices) times the entries of ``weights``, the others times 1."""

    @staticmethod
    def forward(ctx, weights: torch.Tensor, scaled: tuple[int, ...],  # type: ignore[override]
                *maps: torch.Tensor) -> torch.Tensor:
        coefs = torch.ones(len(maps))
        coefs[list(scaled)] = weights.detach()
        out = torch.empty_like(maps[0])
        native.load("wsum").wsum_fwd(  # type: ignore[union-attr]
            pointers(maps), ctypes.c_void_p(coefs.data_ptr()), ctypes.c_void_p(out.data_ptr()),
            ctypes.c_long(len(maps)), ctypes.c_long(out.numel()))
        ctx.scaled, ctx.format = scaled, dense_format(out)
        ctx.save_for_backward(weights, *(maps[t] for t in scaled))
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        weights, *xs = ctx.saved_tensors
        wants_maps, wants_weights = ctx.needs_input_grad[2:], ctx.needs_input_grad[0]
        grads: list[torch.Tensor | None] = [g if wants else None for wants in wants_maps]
        if torch.is_grad_enabled():  # building a graph of the gradient: PyTorch's own ops
            for w, t in zip(weights.unbind(), ctx.scaled):
                grads[t] = w * g if wants_maps[t] else None
            d_weights = (torch.stack([(g * x).sum() for x in xs]) if wants_weights and xs
                         else None)
            return d_weights, None, *grads
        if not ctx.scaled:
            return None, None, *grads
        g_maps = g.contiguous(memory_format=ctx.format)  # the unweighted: g, as it came
        for t in ctx.scaled:
            grads[t] = torch.empty_like(g_maps) if wants_maps[t] else None
        blocks = (g.numel() + BLOCK - 1) // BLOCK
        partial = torch.empty(blocks, len(xs)) if wants_weights else None
        coefs = weights.detach().contiguous()
        native.load("wsum").wsum_bwd(  # type: ignore[union-attr]
            ctypes.c_void_p(g_maps.data_ptr()), pointers(xs), ctypes.c_void_p(coefs.data_ptr()),
            pointers([grads[t] for t in ctx.scaled]),
            ctypes.c_void_p(None if partial is None else partial.data_ptr()),
            ctypes.c_long(len(xs)), ctypes.c_long(g.numel()))
        return None if partial is None else partial.sum(0), None, *grads
