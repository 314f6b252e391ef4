"""The linear part of a relaxed NB201 node, its skips and its average pooling, in one pass.

A relaxed NB201 node j takes from each earlier node x_t a skip, ``ws_t x_t``, and an average
pooling, ``wp_t pool(x_t)`` (3x3, stride 1, padding 1, windows over their real pixels). The
pooling is linear, so the node pools once, ``pool(sum_t wp_t x_t)``; :func:`skip_pool` takes
the whole ``sum_t ws_t x_t + pool(sum_t wp_t x_t)`` in one pass over the inputs
(``native.SKIP_POOL``) instead of a weighted sum, a pooling and the node's sum reading each
skip again. Backward, one pass writes each input's whole gradient from these terms,
``ws_t g + wp_t pool^T(g)`` (one map per input instead of two, and one fewer map for autograd to
add into each input's gradient), and the weights' dot products.

A weight None: that term is absent (not 1, unlike :func:`archsearch.nn.weighted_sum`). The
native kernel takes float32 CPU channels_last maps of one shape and strides over a multiple
of 16 channels; anything else, no C compiler, tracing, or a backward that builds a graph goes
through :func:`~archsearch.nn.weighted_sum.weighted_sum` and
:func:`~archsearch.nn.ops.avg_pool` (the same values up to float rounding).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from archsearch.nn import native
from archsearch.nn.ops import avg_pool
from archsearch.nn.weighted_sum import pointers, weighted_sum

MAX_ROW = 1 << 14  # floats in an image row (W x C) the kernels keep on the stack, twice


def skip_pool(maps: Sequence[torch.Tensor], skip: Sequence[torch.Tensor | None],
              pool: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """sum_t skip[t] maps[t] + avg_pool3x3(sum_t pool[t] maps[t]), terms whose weight is None
    left out (at least one weight given)."""
    if not any(w is not None for w in (*skip, *pool)):
        raise ValueError("skip_pool needs at least one weight")
    if not native_applies(maps, [*skip, *pool]):
        return reference(maps, skip, pool)
    zero = maps[0].new_zeros(())
    ws = torch.stack([zero if w is None else w for w in skip])
    wp = torch.stack([zero if w is None else w for w in pool])
    return SkipPool.apply(ws, wp, *maps)


def reference(maps: Sequence[torch.Tensor], skip: Sequence[torch.Tensor | None],
              pool: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """The same through PyTorch (and the other kernels where they apply)."""
    def part(weights: Sequence[torch.Tensor | None]) -> torch.Tensor | None:
        terms = [(x, w) for x, w in zip(maps, weights) if w is not None]
        if not terms:
            return None
        return weighted_sum([x for x, _ in terms], [w for _, w in terms])

    skipped, pooled = part(skip), part(pool)
    if pooled is not None:
        pooled = avg_pool(pooled, 3, 1, 1)  # (CUDA: around PyTorch's channels_last bug)
    if skipped is None:
        return pooled  # type: ignore[return-value]
    return skipped if pooled is None else skipped + pooled


def native_applies(maps: Sequence[torch.Tensor], weights: Sequence[torch.Tensor | None]) -> bool:
    """Whether the native kernels take this node (never while tracing or compiling)."""
    first = maps[0]
    return (first.device.type == "cpu" and first.dtype == torch.float32 and first.dim() == 4
            and first.shape[1] % 16 == 0 and first.shape[1] * first.shape[3] <= MAX_ROW
            and first.is_contiguous(memory_format=torch.channels_last)
            and all(x.shape == first.shape and x.stride() == first.stride()
                    and x.dtype == first.dtype and x.device == first.device for x in maps)
            and all(w is None or (w.dim() == 0 and w.dtype == first.dtype
                                  and w.device.type == "cpu") for w in weights)
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
            and native.load("skip_pool") is not None)


def sizes(x: torch.Tensor) -> tuple[ctypes.c_long, ...]:
    b, c, h, w = x.shape
    return tuple(ctypes.c_long(v) for v in (b, h, w, c))


def c_ptr(x: torch.Tensor | None) -> ctypes.c_void_p:
    return ctypes.c_void_p(None if x is None else x.data_ptr())


class SkipPool(torch.autograd.Function):
    """``ws @ maps + avg_pool3x3(wp @ maps)``: ws, wp (k,), k maps."""

    @staticmethod
    def forward(ctx, ws: torch.Tensor, wp: torch.Tensor,  # type: ignore[override]
                *maps: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(maps[0], memory_format=torch.channels_last)
        a, b = ws.detach().contiguous(), wp.detach().contiguous()
        native.load("skip_pool").skip_pool_fwd(  # type: ignore[union-attr]
            pointers(maps), c_ptr(a), c_ptr(b), ctypes.c_long(len(maps)), c_ptr(out),
            *sizes(out))
        ctx.save_for_backward(ws, wp, *maps)
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        ws, wp, *maps = ctx.saved_tensors
        wants_weights = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        wants_maps = ctx.needs_input_grad[2:]
        if torch.is_grad_enabled():  # building a graph of the gradient: PyTorch's own ops
            return SkipPool.graph_backward(ctx, g, ws, wp, maps)
        g = g.contiguous(memory_format=torch.channels_last)
        grads = [torch.empty_like(g) if want else None for want in wants_maps]
        k = len(maps)
        b, _, h, _ = g.shape
        dots = torch.empty(b * h, 2, k) if wants_weights else None
        a, p = ws.detach().contiguous(), wp.detach().contiguous()
        native.load("skip_pool").skip_pool_bwd(  # type: ignore[union-attr]
            c_ptr(g), pointers(maps), c_ptr(a), c_ptr(p), ctypes.c_long(k), pointers(grads),
            c_ptr(dots), *sizes(g))
        if dots is None:
            return None, None, *grads
        total = dots.sum(0, dtype=torch.float64).float()  # (2, k)
        return (total[0] if ctx.needs_input_grad[0] else None,
                total[1] if ctx.needs_input_grad[1] else None, *grads)

    @staticmethod
    def graph_backward(ctx, g, ws, wp, maps):
        wants = ctx.needs_input_grad
        inputs = [ws, wp, *maps]
        y = reference(maps, list(ws.unbind()), list(wp.unbind()))
        wanted = [x for x, want in zip(inputs, wants) if want]
        grads = iter(torch.autograd.grad(y, wanted, g, create_graph=True, allow_unused=True))
        return tuple(next(grads) if want else None for want in wants)


@dataclass
class SkipPoolTerms:
    """A node's skips and pooling inputs as its supernet gathers them, by input."""

    maps: list[torch.Tensor] = field(default_factory=list)
    skip: list[torch.Tensor | None] = field(default_factory=list)
    pool: list[torch.Tensor | None] = field(default_factory=list)

    def add(self, x: torch.Tensor, skip: torch.Tensor | None = None,
            pool: torch.Tensor | None = None) -> None:
        """x's skip weight and/or pooling weight (a second weight of a kind adds to the first)."""
        t = next((t for t, m in enumerate(self.maps) if m is x), None)
        if t is None:
            self.maps.append(x)
            self.skip.append(None)
            self.pool.append(None)
            t = len(self.maps) - 1
        self.skip[t] = plus(self.skip[t], skip)
        self.pool[t] = plus(self.pool[t], pool)

    def sum(self) -> torch.Tensor | None:
        """The terms' sum (None: no terms)."""
        return skip_pool(self.maps, self.skip, self.pool) if self.maps else None


def plus(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return b if a is None else a if b is None else a + b
