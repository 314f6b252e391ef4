"""A relaxed NB201 node's skips and pooling in one pass (skip_pool) give what PyTorch's products,
adds and ``F.avg_pool2d(count_include_pad=False)`` give: values, and gradients to the maps and
both kinds of weights, for image sizes whose windows touch the border on one or both sides (1
and 2 pixels wide or tall), with terms of either kind absent; double backward through
PyTorch; falls back where the kernel does not apply; the NB201 supernet's nodes take it."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from archsearch.nn import native, skip_pool
from archsearch.nn.skip_pool import SkipPool, SkipPoolTerms

needs_kernel = pytest.mark.skipif(native.load("skip_pool") is None,
                                  reason="no C compiler here: the native kernels cannot be built")
SHAPES = [(2, 16, 5, 7), (3, 32, 1, 1), (2, 16, 1, 6), (2, 16, 6, 2), (2, 64, 8, 8)]
PATTERNS = {"both": ((0, 1, 2), (0, 1, 2)), "skips only": ((0, 1, 2), ()),
            "pooling only": ((), (0, 1, 2)), "mixed": ((0, 2), (1, 2))}


def node(shape, pattern: str, seed: int = 0, layout=torch.channels_last, dtype=torch.float32):
    """Three maps with a skip weight on the maps of ``PATTERNS[pattern][0]`` and a pooling
    weight on those of ``[1]``."""
    g = torch.Generator().manual_seed(seed)
    maps = [torch.randn(*shape, generator=g, dtype=dtype).contiguous(memory_format=layout)
            .requires_grad_() for _ in range(3)]
    skips, pools = PATTERNS[pattern]
    skip = [torch.rand((), generator=g, dtype=dtype).requires_grad_() if t in skips else None
            for t in range(3)]
    pool = [torch.rand((), generator=g, dtype=dtype).requires_grad_() if t in pools else None
            for t in range(3)]
    return maps, skip, pool


def pytorchs(maps, skip, pool) -> torch.Tensor:
    total = sum(w * x for x, w in zip(maps, skip) if w is not None)
    pooled = [w * x for x, w in zip(maps, pool) if w is not None]
    if pooled:
        total = total + F.avg_pool2d(sum(pooled), 3, 1, 1, count_include_pad=False)
    return total


def inputs_of(maps, skip, pool) -> list[torch.Tensor]:
    return [*maps, *(w for w in (*skip, *pool) if w is not None)]


@needs_kernel
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_values_and_gradients_are_pytorchs(shape, pattern: str) -> None:
    maps, skip, pool = node(shape, pattern)
    assert skip_pool.native_applies(maps, [*skip, *pool])
    ours, theirs = skip_pool.skip_pool(maps, skip, pool), pytorchs(maps, skip, pool)
    assert ours.grad_fn is not None and "SkipPool" in type(ours.grad_fn).__name__
    assert ours.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    g = torch.randn(ours.shape)  # contiguous: another layout than the maps'
    inputs = inputs_of(maps, skip, pool)
    for a, b in zip(torch.autograd.grad(ours, inputs, g), torch.autograd.grad(theirs, inputs, g)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@needs_kernel
def test_only_the_wanted_gradients() -> None:
    maps, skip, pool = node((2, 16, 5, 7), "both")
    maps[1] = maps[1].detach()
    y = skip_pool.skip_pool(maps, skip, pool)
    got = torch.autograd.grad(y.sum(), [maps[0], maps[2], pool[1]])
    want = torch.autograd.grad(pytorchs(maps, skip, pool).sum(), [maps[0], maps[2], pool[1]])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@needs_kernel
def test_double_backward_goes_through_pytorch() -> None:
    maps, skip, pool = node((2, 16, 5, 7), "mixed")
    second = []
    for total in (skip_pool.skip_pool(maps, skip, pool), pytorchs(maps, skip, pool)):
        d_pool = torch.autograd.grad(total.square().sum(), pool[2], create_graph=True)[0]
        second.append(torch.autograd.grad(d_pool, [maps[1], maps[2], skip[2]]))
    for a, b in zip(*second):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", ["NCHW", "float64", "strides differ", "24 channels"])
def test_falls_back_where_the_kernel_does_not_apply(case: str) -> None:
    maps, skip, pool = node((2, 24 if case == "24 channels" else 16, 5, 7), "mixed",
                            layout=torch.contiguous_format if case == "NCHW"
                            else torch.channels_last,
                            dtype=torch.float64 if case == "float64" else torch.float32)
    if case == "strides differ":
        maps[0] = maps[0].contiguous()
    assert not skip_pool.native_applies(maps, [*skip, *pool])
    y = skip_pool.skip_pool(maps, skip, pool)
    assert "SkipPool" not in type(y.grad_fn).__name__
    torch.testing.assert_close(y, pytorchs(maps, skip, pool), rtol=1e-5, atol=1e-5)


def test_terms_gather_each_map_once_and_need_a_weight() -> None:
    maps, skip, pool = node((2, 16, 5, 7), "both")
    terms = SkipPoolTerms()
    terms.add(maps[0], skip=skip[0])
    terms.add(maps[1], pool=pool[1])
    terms.add(maps[0], pool=pool[0])
    terms.add(maps[0], skip=skip[2])  # a second skip weight on the same map adds to the first
    assert len(terms.maps) == 2
    expected = ((skip[0] + skip[2]) * maps[0] + F.avg_pool2d(
        pool[1] * maps[1] + pool[0] * maps[0], 3, 1, 1, count_include_pad=False))
    torch.testing.assert_close(terms.sum(), expected, rtol=1e-5, atol=1e-5)
    assert SkipPoolTerms().sum() is None
    with pytest.raises(ValueError, match="at least one weight"):
        skip_pool.skip_pool(maps, [None] * 3, [None] * 3)


@needs_kernel
def test_the_nb201_supernets_nodes_take_it(monkeypatch) -> None:
    from archsearch.nn.mixed import Relaxed
    from archsearch.registry import SPACES

    calls: list[int] = []
    real = SkipPool.apply
    monkeypatch.setattr(SkipPool, "apply", lambda *a: calls.append(1) or real(*a))
    model = SPACES.create("nb201").supernet(channels=16, cells_per_stage=1, num_classes=3)
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    model(x, Relaxed(tuple(torch.full((5,), 0.2) for _ in range(6))))
    assert len(calls) == 3 * 3  # 3 cells, each node's skips and pooling in one call
