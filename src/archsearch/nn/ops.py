"""Operations shared by the cell spaces, each a small module. Channels first (NCHW)."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from archsearch.nn.channel_matmul import channel_matmul
from archsearch.nn.depthwise import DepthwiseConv2d
from archsearch.nn.mixed import weigh
from archsearch.nn.normalized_sum import Normalized, folds
from archsearch.nn.pool3x3 import avg_pool3x3, max_pool3x3


def pointwise(x: torch.Tensor, weight: torch.Tensor, stride: int = 1,
              offset: int = 0) -> torch.Tensor:
    """A 1x1 convolution without bias or padding of ``x[:, :, offset:, offset:]``: ``weight``
    (C_out, C_in, 1, 1).

    On the CPU a channels_last input is already a (B, H, W, C_in) matrix in memory, so the
    convolution is one matmul over the channel axis (of every ``stride``-th row and column, a
    strided view), which is 1.5-3x faster forward and backward than oneDNN's 1x1 convolution at
    the 16-64 channels of searched cells; at stride 2 it makes FactorizedReduce 1.2-1.4x faster
    forward+backward (BENCHMARKS.md). The matmul is :func:`channel_matmul` (a native kernel
    at 16-256 channels in multiples of 16, else ``F.linear``). The output is channels_last too.
    Anywhere else: ``F.conv2d``. Same values either way.
    """
    if x.device.type == "cpu" and x.dim() == 4 and x.is_contiguous(
            memory_format=torch.channels_last):
        rows = x.permute(0, 2, 3, 1)  # (B, H, W, C_in), a view
        if stride > 1 or offset > 0:
            rows = rows[:, offset::stride, offset::stride]  # (B, H', W', C_in), a view
        return channel_matmul(rows, weight.flatten(1)).permute(0, 3, 1, 2)  # (B, C_out, H', W')
    return F.conv2d(x[:, :, offset:, offset:], weight, stride=stride)


class Conv1x1(nn.Conv2d):
    """``nn.Conv2d(c_in, c_out, 1, bias=False)`` (same parameters and state-dict keys) that
    runs through :func:`pointwise`."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise(x, self.weight)


def scaled_batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor,
                      scale: torch.Tensor | None) -> torch.Tensor:
    """``scale * bn(x)`` (``scale``: a 0-d tensor, e.g. an op's mixing weight; None: 1).

    Where ``bn`` keeps no running statistics (the relaxed supernets' BatchNorm) the scale is
    folded into its affine transform, one ``batch_norm`` call whose weight gradient is the
    scale's: the same values as the product, without its elementwise pass forward and its
    two backward (the products of the mixing weights were ~6% of a DARTS search step)."""
    if scale is None or bn.track_running_stats:
        return weigh(bn(x), scale)
    # the affine parameters in the input's precision (float32 under bf16 autocast, as BN's own)
    scale = scale.to(x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32)
    # (C,), contiguous: with an expanded (stride-0) weight, torch 2.13's CPU batch_norm
    # backward gave NaN gradients, depending on what the process had run before
    weight = scale.expand(x.shape[1]).contiguous() if bn.weight is None else scale * bn.weight
    bias = None if bn.bias is None else scale * bn.bias
    return F.batch_norm(x, None, None, weight, bias, True, 0.0, bn.eps)


class _ContiguousGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.channels_last = x.is_contiguous(memory_format=torch.channels_last)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        memory = torch.channels_last if ctx.channels_last else torch.contiguous_format
        return grad.contiguous(memory_format=memory)


def contiguous_grad(x: torch.Tensor) -> torch.Tensor:
    """``x``, whose gradient is made contiguous (in x's memory format) on its way back.

    A cell's output concatenates its nodes; the gradient each node gets back from that
    concatenation is a channel slice of the output's, not contiguous, and the CPU's BatchNorm
    backward over such a gradient takes a slow generic path (4x slower in a DARTS search
    step, once the mixing weights are folded into the BatchNorms and no product sits between
    them to copy it). One copy per node makes it contiguous for every op behind it."""
    if (not x.requires_grad or x.dim() != 4 or not torch.is_grad_enabled()
            or torch.jit.is_tracing() or torch.compiler.is_compiling()):
        return x  # nothing to do, or a graph that a Python autograd Function cannot enter
    return _ContiguousGrad.apply(x)


def cat_channels(states: list[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(states, dim=1)``, each state getting its gradient back contiguous
    (:func:`contiguous_grad`): a cell's output. In a CPU training step this makes the
    DARTS-V2 and NASNet networks 1.3-1.4x faster (BENCHMARKS.md)."""
    return torch.cat([contiguous_grad(s) for s in states], dim=1)


class Scaled(nn.Sequential):
    """A sequence that may end in a BatchNorm; ``forward(x, scale)`` = scale * sequence(x),
    the scale folded into that BatchNorm where :func:`scaled_batch_norm` can (``defer``: see
    :meth:`run_from`)."""

    def forward(self, x: torch.Tensor,  # type: ignore[override]
                scale: torch.Tensor | None = None, defer: bool = False) -> Any:
        return self.run_from(0, x, scale, defer)

    def run_from(self, first: int, x: torch.Tensor, scale: torch.Tensor | None,
                 defer: bool = False) -> torch.Tensor | Normalized:
        """Modules ``first``.. on x, times ``scale``; ``defer``: a last BatchNorm that a
        node's sum can normalise through (:func:`archsearch.nn.normalized_sum.folds`) is left
        to it (its input returned as :class:`Normalized`)."""
        *body, last = itertools.islice(self, first, None)
        for module in body:
            x = module(x)
        if isinstance(last, nn.BatchNorm2d):
            if defer and folds(last):
                return Normalized(x, scale, last)
            return scaled_batch_norm(last, x, scale)
        return weigh(last(x), scale)


class ReLUFirst(Scaled):
    """A sequence whose first module is a ReLU of the input; ``forward(x, activated)`` with
    ``activated`` = relu(x) runs the rest on it.

    A cell's node feeds every later node through several ReLU-first ops (DARTS: 4 of its 7
    ops on each outgoing edge, NB201: 2 of 5); computing the node's ReLU once for all of them
    (the same values, its gradient summed before one ReLU backward) saves their ReLUs forward
    and backward and the memory their outputs held."""

    def forward(self, x: torch.Tensor,  # type: ignore[override]
                activated: torch.Tensor | None = None,
                scale: torch.Tensor | None = None, defer: bool = False) -> Any:
        if activated is None:
            return self.run_from(0, x, scale, defer)
        return self.run_from(1, activated, scale, defer)  # the ReLU (module 0) already applied


class ReLUConvBN(ReLUFirst):
    """ReLU -> conv (no bias) -> BN: NB201's ``nor_conv`` and the cells' plain convolution."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int | None = None,
        dilation: int = 1, affine: bool = True, track_running_stats: bool = True,
    ) -> None:
        padding = dilation * (kernel - 1) // 2 if padding is None else padding
        super().__init__(
            nn.ReLU(inplace=False),
            Conv1x1(c_in, c_out) if kernel == 1 and stride == 1 else
            nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )


class SepConv(ReLUFirst):
    """Depthwise-separable conv, applied twice (DARTS/ENAS ``sep_conv``): 2x(ReLU, dw, pw, BN)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        pad = (kernel - 1) // 2
        bn = dict(affine=affine, track_running_stats=track_running_stats)
        super().__init__(
            nn.ReLU(inplace=False),
            DepthwiseConv2d(c_in, kernel, stride, pad),
            Conv1x1(c_in, c_in),
            nn.BatchNorm2d(c_in, **bn),
            nn.ReLU(inplace=False),
            DepthwiseConv2d(c_in, kernel, 1, pad),
            Conv1x1(c_in, c_out),
            nn.BatchNorm2d(c_out, **bn),
        )


class DilConv(ReLUFirst):
    """ReLU -> depthwise kxk conv with dilation d -> pointwise 1x1 -> BN: DARTS' and NASNet's
    ``dil_conv`` (3x3 and 5x5 at dilation 2: a 5x5 and a 9x9 receptive field)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, dilation: int = 2,
        affine: bool = True, track_running_stats: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            DepthwiseConv2d(c_in, kernel, stride, dilation * (kernel - 1) // 2, dilation),
            Conv1x1(c_in, c_out),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )


class Zero(nn.Module):
    """The ``none`` op: a zero tensor of the output shape."""

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


def avg_pool(x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """Average pooling whose windows count only real pixels (``count_include_pad=False``).

    On CUDA, for a channels_last input with padding, PyTorch's backward kernel returns wrong
    input gradients in some releases (pytorch/pytorch#188344; in 2.11 the error is as large as
    the gradient itself, measured in tests/test_cuda.py), silently corrupting the training of
    every cell with a pooling op. There the zeros of the padding are added explicitly, the
    padding-free kernel (which is right) takes the window means, and each is rescaled by the
    share of the window that is real pixels. On the CPU a 3x3 window with padding 1 goes to
    :func:`archsearch.nn.pool3x3.avg_pool3x3` (a native kernel where it applies). Same values
    everywhere; elsewhere plain ``F.avg_pool2d``.
    """
    if kernel == 3 and padding == 1 and x.device.type == "cpu":
        return avg_pool3x3(x, stride)
    if padding == 0 or x.device.type != "cuda" or not x.is_contiguous(
            memory_format=torch.channels_last):
        return F.avg_pool2d(x, kernel, stride, padding, count_include_pad=False)
    pad = (padding,) * 4
    padded = F.pad(x, pad).contiguous(memory_format=torch.channels_last)  # (B, C, H+2p, W+2p)
    means = F.avg_pool2d(padded, kernel, stride)  # window sums / kernel^2: (B, C, H', W')
    ones = torch.ones(1, 1, *x.shape[2:], device=x.device, dtype=x.dtype)
    real = F.avg_pool2d(F.pad(ones, pad), kernel, stride)  # real pixels / kernel^2: (1, 1, H', W')
    return means / real


class Pool(nn.Module):
    """kxk average or max pooling (k = 3 by default), stride 1 or 2, padding (k-1)/2; the
    average excludes the padding."""

    def __init__(self, kind: str, stride: int = 1, kernel: int = 3) -> None:
        super().__init__()
        if kind not in ("avg", "max"):
            raise ValueError(f"pool kind must be 'avg' or 'max', not {kind!r}")
        self.kind, self.stride, self.kernel = kind, stride, kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.kernel - 1) // 2
        if self.kind == "avg":
            return avg_pool(x, self.kernel, self.stride, pad)
        if self.kernel == 3:
            return max_pool3x3(x, self.stride)
        return F.max_pool2d(x, self.kernel, self.stride, pad)


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing pixels: two offset 1x1 stride-2 convs, concatenated."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        assert c_out % 2 == 0, "FactorizedReduce needs an even number of output channels"
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor, activated: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        """``scale``: the output times it (see :func:`scaled_batch_norm`)."""
        x = activated if activated is not None else self.relu(x)  # (B, C_in, H, W)
        if x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0:  # the offset grid is x[1::2, 1::2]
            a = pointwise(x, self.conv_a.weight, 2)  # (B, C_out/2, H/2, W/2)
            b = pointwise(x, self.conv_b.weight, 2, offset=1)
        else:  # odd sizes: the offset grid's last row and column are padding
            shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
            a, b = self.conv_a(x), self.conv_b(shifted)
        return scaled_batch_norm(self.bn, torch.cat([a, b], dim=1), scale)


def starts_with_relu(op: nn.Module) -> bool:
    """Whether ``op`` begins with a ReLU of its input and takes ``op(x, activated, scale)``."""
    return isinstance(op, (ReLUFirst, FactorizedReduce))


def run_scaled(op: nn.Module, x: torch.Tensor, scale: torch.Tensor | None,
               activated: torch.Tensor | None = None) -> torch.Tensor:
    """``scale * op(x)`` (None: ``op(x)``), folded into the op's last BatchNorm where it has
    one (:func:`scaled_batch_norm`); ``activated`` = relu(x) for a ReLU-first op."""
    if starts_with_relu(op):
        return op(x, activated, scale)
    if isinstance(op, Scaled):
        return op(x, scale)
    return weigh(op(x), scale)


def run_deferred(op: nn.Module, x: torch.Tensor, scale: torch.Tensor | None,
                 activated: torch.Tensor | None = None) -> torch.Tensor | Normalized:
    """:func:`run_scaled`, except that an op ending in a BatchNorm a node's sum can normalise
    through returns that BatchNorm's input (:class:`Normalized`), for
    :class:`archsearch.nn.terms.Terms`."""
    if isinstance(op, ReLUFirst):
        return op(x, activated, scale, defer=True)
    if isinstance(op, Scaled):
        return op(x, scale, defer=True)
    return run_scaled(op, x, scale, activated)


class ResNetBasicBlock(nn.Module):
    """NB201's reduction block: two 3x3 ReLUConvBN (first stride 2) + avgpool-1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        bn = dict(affine=affine, track_running_stats=track_running_stats)
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, **bn)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, **bn)
        if stride == 2:
            self.shortcut: nn.Module = nn.Sequential(
                nn.AvgPool2d(2, 2), Conv1x1(c_in, c_out)
            )
        elif c_in != c_out:
            self.shortcut = ReLUConvBN(c_in, c_out, 1, **bn)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


def count_params_m(model: nn.Module) -> float:
    """Trainable parameters, in millions."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
