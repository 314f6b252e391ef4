"""weighted_sum gives PyTorch's chain of products and adds: the same values (the same sums in
the same order), the same gradients up to the order of float summation, in either dense
layout, over several blocks of the kernel with a tail, with or without gradients wanted; and
falls back to PyTorch where the kernel does not apply."""

from __future__ import annotations

import pytest
import torch

from archsearch.nn import native
from archsearch.nn.terms import Terms
from archsearch.nn.weighted_sum import BLOCK, native_applies, reference_sum, weighted_sum

needs_kernel = pytest.mark.skipif(native.load("wsum") is None,
                                  reason="no C compiler here: the native kernels cannot be built")

SHAPE = (3, 17, 11, 13)  # 7,293 floats: a block of the kernel, then 3,197 (not 16k)
assert BLOCK < 3 * 17 * 11 * 13 < 2 * BLOCK


def maps_and_weights(layout: torch.memory_format, weighted: tuple[int, ...], n: int = 5,
                     shape: tuple[int, ...] = SHAPE, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    maps = [torch.randn(shape, generator=g).contiguous(memory_format=layout).requires_grad_()
            for _ in range(n)]
    weights = [torch.randn((), generator=g).requires_grad_() if t in weighted else None
               for t in range(n)]
    return maps, weights


def grads(y: torch.Tensor, maps, weights, g: torch.Tensor) -> list[torch.Tensor]:
    inputs = [*maps, *(w for w in weights if w is not None)]
    return list(torch.autograd.grad(y, inputs, g))


@needs_kernel
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format],
                         ids=["channels_last", "contiguous"])
@pytest.mark.parametrize("weighted", [(), (0,), (1, 3), (0, 1, 2, 3, 4)],
                         ids=["none weighted", "first", "two", "all"])
def test_values_and_gradients_are_pytorchs(layout, weighted) -> None:
    maps, weights = maps_and_weights(layout, weighted)
    assert native_applies(maps, weights)
    y, ref = weighted_sum(maps, weights), reference_sum(maps, weights)
    assert torch.equal(y, ref)
    assert y.stride() == maps[0].stride()
    g = torch.randn(SHAPE)  # contiguous: another layout than channels_last maps
    for ours, theirs in zip(grads(y, maps, weights, g), grads(ref, maps, weights, g)):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-4)


@needs_kernel
def test_a_map_twice_and_no_gradient_wanted() -> None:
    x = torch.randn(SHAPE).requires_grad_()
    w = torch.tensor(0.25)  # a detached weight (the weights' step)
    y = weighted_sum([x, x, x], [None, w, None])
    assert torch.equal(y, reference_sum([x, x, x], [None, w, None]))
    (gx,) = torch.autograd.grad(y.sum(), [x])
    torch.testing.assert_close(gx, torch.full(SHAPE, 2.25))
    with torch.no_grad():
        assert torch.equal(weighted_sum([x, x], [w, w]), 2 * (w * x))


@needs_kernel
def test_double_backward_goes_through_pytorch() -> None:
    maps, weights = maps_and_weights(torch.channels_last, (0, 2), n=3)
    ours = [weighted_sum, reference_sum]
    second = []
    for f in ours:
        y = f(maps, weights)
        d_w0 = torch.autograd.grad(y.square().sum(), weights[0], create_graph=True)[0]
        second.append(torch.autograd.grad(d_w0, [maps[0], weights[2]]))
    for a, b in zip(*second):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("case", ["one map", "float64", "strides differ", "broadcast",
                                  "a scalar", "sliced"])
def test_falls_back_where_the_kernel_does_not_apply(case: str) -> None:
    maps, weights = maps_and_weights(torch.channels_last, (1,), n=3)
    if case == "one map":
        maps, weights = maps[:1], weights[:1]
    if case == "float64":
        maps = [x.double() for x in maps]
        weights = [None if w is None else w.double() for w in weights]
    if case == "strides differ":
        maps[2] = maps[2].contiguous()
    if case == "broadcast":
        maps[2] = torch.randn(1, 17, 1, 1)
    if case == "a scalar":
        maps[2] = torch.tensor(0.5)
    if case == "sliced":
        maps = [x[:, :, ::2] for x in maps]
    assert not native_applies(maps, weights)
    torch.testing.assert_close(weighted_sum(maps, weights), reference_sum(maps, weights),
                               rtol=0, atol=0)


def test_disabled_by_environment(monkeypatch) -> None:
    monkeypatch.setenv("ARCHSEARCH_NATIVE", "0")
    native.load.cache_clear()
    try:
        maps, weights = maps_and_weights(torch.channels_last, (1,))
        assert not native_applies(maps, weights)
        torch.testing.assert_close(weighted_sum(maps, weights), reference_sum(maps, weights))
    finally:
        native.load.cache_clear()


def test_terms_gather_a_sum_or_nothing() -> None:
    terms = Terms()
    assert terms.sum() is None
    x, w = torch.ones(2, 16, 3, 3), torch.tensor(3.0)
    terms.add(x)
    terms.add(x, w)
    assert torch.equal(terms.sum(), torch.full((2, 16, 3, 3), 4.0))
