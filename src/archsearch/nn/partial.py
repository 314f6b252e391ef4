"""PC-DARTS' partial channel connections (Xu et al., ICLR 2020; yuhuixu1993/PC-DARTS
``model_search.py``, ``MixedOp`` and ``channel_shuffle``).

An edge of a relaxed supernet sends only the first C/K of its input's channels through its mixed
op (whose candidate ops are built at C/K channels); the other channels bypass it unchanged (2x2
max-pooled on a stride-2 edge), and the two parts, concatenated, are channel-shuffled in K
groups so that the next edge sees other channels. K = 1 is DARTS' edge: the mixed op alone.

The official code pools with floor division; here the bypass pools with ``ceil_mode`` so that
odd sizes match the stride-2 ops' ceil(H/2) (the same on the even sizes the official code runs).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from archsearch.errors import UserError
from archsearch.nn.lean_max_pool import lean_max_pool2d
from archsearch.nn.mixed import weigh
from archsearch.nn.ops import contiguous_grad


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W): input channel g * C/groups + j goes to j * groups + g
    (ShuffleNet's shuffle, the official ``channel_shuffle``)."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def partial_edge(x: torch.Tensor, k: int, stride: int,
                 mixed: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor | None],
                 weight: torch.Tensor | None = None) -> torch.Tensor | None:
    """The edge on x (B, C, H, W) times ``weight`` (its weight in its node's sum; None: 1):
    ``mixed(x', weight)`` (the mixed op at C/k channels times the weight, None when nothing
    contributes) on the first C/k channels, the rest bypassing (times the weight),
    concatenated and shuffled in k groups; k = 1: ``mixed(x, weight)``, exactly. A mixed op
    with no output adds zeros here: the bypass still flows (the official ``none`` op outputs
    zeros). The weight goes into the two parts, not onto the shuffled whole: the product
    kept for its gradient is then the bypass (a view of x on a stride-1 edge), not the
    edge's output."""
    if k == 1:
        return mixed(x, weight)
    c = x.shape[1] // k
    rest = x[:, c:]  # (B, C - C/k, H, W)
    if stride == 2:
        rest = lean_max_pool2d(rest, 2, 2, ceil_mode=True)  # (B, C - C/k, H/2, W/2)
    rest = weigh(rest, weight)
    y = mixed(x[:, :c], weight)  # (B, C/k, H', W') or None
    if y is None:
        y = rest.new_zeros((rest.shape[0], c, *rest.shape[2:]))
    # y's gradient comes back as a slice of the shuffled one: made contiguous for its ops
    return channel_shuffle(torch.cat([contiguous_grad(y), rest], dim=1), k)  # (B, C, H', W')


def check_partial(channels: int, k: int) -> None:
    """K must divide the channels of every edge (the supernet's base channels)."""
    if k < 1 or channels % k:
        raise UserError(f"partial_channels must be a positive divisor of channels "
                         f"({channels}), not {k}")
