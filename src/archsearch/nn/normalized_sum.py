"""A relaxed node's sum whose terms include BatchNorm outputs, taken from the BatchNorms' inputs.

The relaxed supernets' convolutions end in a BatchNorm without affine parameters that always
normalises with the batch's statistics, its mixing weight folded in: ``s * (z - mean) / std``
per channel. PyTorch writes that map, and the node's sum reads it again; its backward reads the
node's gradient once per BatchNorm. :func:`normalized_sum` takes the BatchNorms' inputs ``z``
instead (``native.WSUM_BN``): the moments of each z (one pass), then one pass computing the
node from the plain maps and the z's, each normalised on the fly; backward, one pass for the
per-channel sums (of g, shared by every BatchNorm, and of g (z - mean) per BatchNorm), then
one writing every input's gradient (BatchNorm's backward, alpha g + beta z + gamma per
channel, and w g for a weighted plain map).

Float32 CPU maps of one shape and the channels_last layout over a multiple of 16 channels only (:func:`native_applies`);
:class:`archsearch.nn.terms.Terms` normalises the maps with PyTorch otherwise (the same values
up to float rounding). A backward that builds a graph (double backward) recomputes the node
with PyTorch's ops and differentiates that.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from archsearch.nn import native
from archsearch.nn.weighted_sum import pointers, reference_sum

BLOCK = 4096  # floats per block of the kernels, rounded down to whole pixels


@dataclass(frozen=True, eq=False)
class Normalized:
    """``scale * bn(z)`` (scale None: 1), not yet computed."""

    z: torch.Tensor
    scale: torch.Tensor | None
    bn: nn.BatchNorm2d


def folds(bn: nn.Module) -> bool:
    """Whether a node's sum can normalise through ``bn`` itself: no affine parameters and the
    batch's statistics always (the relaxed supernets' BatchNorm)."""
    return (isinstance(bn, nn.BatchNorm2d) and not bn.affine and not bn.track_running_stats)


def native_applies(maps: Sequence[torch.Tensor], weights: Sequence[torch.Tensor | None],
                   norms: Sequence[Normalized]) -> bool:
    """Whether the native kernels take this node: float32 CPU channels_last maps of one shape
    and strides over a multiple of 16 channels, 0-d weights, one epsilon (never while tracing
    or compiling)."""
    if not norms:
        return False
    first = norms[0].z
    tensors = [*maps, *(n.z for n in norms)]
    scales = [*weights, *(n.scale for n in norms)]
    return (first.device.type == "cpu" and first.dtype == torch.float32 and first.dim() == 4
            and first.shape[1] % 16 == 0
            and first.is_contiguous(memory_format=torch.channels_last)
            and all(x.shape == first.shape and x.stride() == first.stride()
                    and x.dtype == first.dtype and x.device == first.device for x in tensors)
            and all(s is None or (s.dim() == 0 and s.dtype == first.dtype
                                  and s.device.type == "cpu") for s in scales)
            and len({n.bn.eps for n in norms}) == 1
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
            and native.load("wsum_bn") is not None)


def normalized_sum(maps: Sequence[torch.Tensor], weights: Sequence[torch.Tensor | None],
                   norms: Sequence[Normalized]) -> torch.Tensor:
    """sum_t weights[t] * maps[t] + sum_n n.scale * n.bn(n.z), where :func:`native_applies`."""
    ones = norms[0].z.new_ones(())
    scaled = tuple(t for t, w in enumerate(weights) if w is not None)
    plain_weights = (torch.stack([weights[t] for t in scaled])  # type: ignore[misc]
                     if scaled else ones.new_empty(0))
    scales = torch.stack([ones if n.scale is None else n.scale for n in norms])
    return NormalizedSum.apply(plain_weights, scales, scaled, norms[0].bn.eps, *maps,
                               *(n.z for n in norms))


def reference(maps: Sequence[torch.Tensor], weights: Sequence[torch.Tensor | None],
              zs: Sequence[torch.Tensor], scales: torch.Tensor, eps: float) -> torch.Tensor:
    """The node with PyTorch's ops (the double backward's graph)."""
    normalized = [F.batch_norm(z, None, None, s.expand(z.shape[1]).contiguous(), None, True,
                               0.0, eps) for z, s in zip(zs, scales.unbind())]
    return reference_sum([*maps, *normalized], [*weights, *[None] * len(zs)])


def c_float(x: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(x.data_ptr())


def sizes_of(x: torch.Tensor) -> tuple[int, int, int]:
    """(pixels, channels, pixels a block) of a (B, C, H, W) map."""
    b, c, h, w = x.shape
    return b * h * w, c, max(1, BLOCK // c)


class NormalizedSum(torch.autograd.Function):
    """Maps ``scaled`` (indices) times ``plain_weights``, the other maps as they are, and the
    BatchNorms of the z's times ``scales``; the first ``len(tensors) - len(scales)`` tensors
    are the maps, the rest the z's."""

    @staticmethod
    def forward(ctx, plain_weights: torch.Tensor, scales: torch.Tensor,  # type: ignore[override]
                scaled: tuple[int, ...], eps: float, *tensors: torch.Tensor) -> torch.Tensor:
        n_maps = len(tensors) - len(scales)
        maps, zs = tensors[:n_maps], tensors[n_maps:]
        lib = native.load("wsum_bn")
        n_pix, c, ppb = sizes_of(zs[0])
        sizes = tuple(ctypes.c_long(v) for v in (n_pix, c, ppb))
        mean, invstd = torch.empty(len(zs), c), torch.empty(len(zs), c)  # (K, C)
        work = torch.empty(2, (n_pix + ppb - 1) // ppb, len(zs), c)
        lib.bn_moments(pointers(zs), c_float(mean), c_float(invstd),  # type: ignore[union-attr]
                       c_float(work), ctypes.c_long(len(zs)), *sizes, ctypes.c_double(eps))
        a = scales.detach()[:, None] * invstd
        shift = -mean * a
        coefs = torch.ones(n_maps)
        coefs[list(scaled)] = plain_weights.detach()
        out = torch.empty_like(zs[0])
        lib.wsum_bn_fwd(pointers(maps), c_float(coefs),  # type: ignore[union-attr]
                        ctypes.c_long(n_maps), pointers(zs), c_float(a), c_float(shift),
                        ctypes.c_long(len(zs)), c_float(out), *sizes)
        ctx.scaled, ctx.n_maps, ctx.eps = scaled, n_maps, eps
        ctx.save_for_backward(plain_weights, scales, mean, invstd, *tensors)
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        plain_weights, scales, mean, invstd, *tensors = ctx.saved_tensors
        maps, zs = tensors[:ctx.n_maps], tensors[ctx.n_maps:]
        wants_weights, wants_scales = ctx.needs_input_grad[:2]
        wants_maps, wants_zs = ctx.needs_input_grad[4:4 + ctx.n_maps], ctx.needs_input_grad[
            4 + ctx.n_maps:]
        if torch.is_grad_enabled():  # building a graph of the gradient: PyTorch's own ops
            return NormalizedSum.graph_backward(ctx, g, plain_weights, scales, maps, zs)
        g_in, g = g, g.contiguous(memory_format=torch.channels_last)
        n_pix, c, ppb = sizes_of(g)
        sizes = tuple(ctypes.c_long(v) for v in (n_pix, c, ppb))
        blocks = (n_pix + ppb - 1) // ppb
        weighted = [maps[t] for t in ctx.scaled]
        dots = torch.empty(blocks, len(weighted)) if wants_weights and weighted else None
        sg, sgz = torch.empty(blocks, c), torch.empty(blocks, len(zs), c)
        lib = native.load("wsum_bn")
        lib.wsum_bn_bwd_reduce(  # type: ignore[union-attr]
            c_float(g), pointers(weighted), ctypes.c_long(len(weighted)),
            None if dots is None else c_float(dots), pointers(zs), c_float(mean),
            ctypes.c_long(len(zs)), c_float(sg), c_float(sgz), *sizes)
        s = scales.detach()[:, None]  # (K, 1)
        g_sum = sg.sum(0, dtype=torch.float64).float()  # (C,)
        t = invstd * sgz.sum(0, dtype=torch.float64).float()  # sum of g * z_hat: (K, C)
        alpha = s * invstd
        beta = -alpha * invstd * t / n_pix
        gamma = -alpha * g_sum / n_pix - beta * mean
        grad_maps: list[torch.Tensor | None] = [g_in if want else None for want in wants_maps]
        for k in ctx.scaled:  # the weighted maps: w g, written below
            grad_maps[k] = torch.empty_like(g) if wants_maps[k] else None
        grad_zs = [torch.empty_like(g) if want else None for want in wants_zs]
        coefs = plain_weights.detach().contiguous()
        lib.wsum_bn_bwd_apply(  # type: ignore[union-attr]
            c_float(g), c_float(coefs), pointers([grad_maps[k] for k in ctx.scaled]),
            ctypes.c_long(len(weighted)), pointers(zs), c_float(alpha), c_float(beta),
            c_float(gamma), pointers(grad_zs), ctypes.c_long(len(zs)), *sizes)
        d_weights = None if dots is None else dots.sum(0)
        d_scales = t.sum(1) if wants_scales else None
        return d_weights, d_scales, None, None, *grad_maps, *grad_zs

    @staticmethod
    def graph_backward(ctx, g, plain_weights, scales, maps, zs):
        wants = [*ctx.needs_input_grad[:2], *ctx.needs_input_grad[4:]]
        inputs = [plain_weights, scales, *maps, *zs]
        weights: list[torch.Tensor | None] = [None] * len(maps)
        for w, k in zip(plain_weights.unbind(), ctx.scaled):
            weights[k] = w
        y = reference(maps, weights, zs, scales, ctx.eps)
        wanted = [x for x, want in zip(inputs, wants) if want]
        grads = iter(torch.autograd.grad(y, wanted, g, create_graph=True, allow_unused=True))
        out = [next(grads) if want else None for want in wants]
        return out[0], out[1], None, None, *out[2:]
