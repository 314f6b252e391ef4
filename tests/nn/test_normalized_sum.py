"""A node's sum with BatchNorm outputs taken from their inputs (normalized_sum) gives what
PyTorch's BatchNorm and adds give: values, and gradients to the plain maps, their weights, the
BatchNorms' inputs and scales (over blocks of whole pixels with a short last one, for channel
counts that do and do not divide the block); double backward through PyTorch; falls back where
the kernel does not apply; ops defer only a BatchNorm the sum can normalise through; and the
relaxed supernets summing their nodes this way compute what they computed edge by edge."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from archsearch.nn import native, normalized_sum
from archsearch.nn.mixed import Relaxed
from archsearch.nn.normalized_sum import Normalized, NormalizedSum
from archsearch.nn.ops import ReLUConvBN, run_deferred
from archsearch.nn.skip_pool import SkipPool
from archsearch.nn.terms import Terms
from archsearch.nn.weighted_sum import WeightedSum
from archsearch.registry import SPACES
from archsearch.spaces.darts_supernet import SearchCell
from archsearch.spaces.nb201 import NB201CellModule

needs_kernel = pytest.mark.skipif(native.load("wsum_bn") is None,
                                  reason="no C compiler here: the native kernels cannot be built")
BN = nn.BatchNorm2d(16, affine=False, track_running_stats=False)


def node(channels: int = 16, plain: int = 3, weighted: tuple[int, ...] = (0, 2),
         norms: int = 3, scale_grad: bool = True, seed: int = 0, layout=torch.channels_last):
    """Terms of a node: ``plain`` maps (``weighted`` of them weighted), ``norms`` BatchNorm
    inputs (3 x 11 x 13 = 429 pixels: blocks of 256 at 16 channels, of 128 at 32)."""
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels, affine=False, track_running_stats=False)

    def a_map(shift: float = 0.0) -> torch.Tensor:
        x = torch.randn(3, channels, 11, 13, generator=g) * 2 + shift
        return x.contiguous(memory_format=layout).requires_grad_()

    terms = Terms()
    for t in range(plain):
        terms.add(a_map(), torch.rand((), generator=g).requires_grad_() if t in weighted else None)
    for t in range(norms):
        scale = torch.rand((), generator=g).requires_grad_(scale_grad)
        terms.add(Normalized(a_map(shift=3.0 * t), scale, bn))  # a mean far from 0, too
    return terms


def inputs_of(terms: Terms) -> list[torch.Tensor]:
    return [*terms.maps, *(w for w in terms.weights if w is not None),
            *(n.z for n in terms.norms),
            *(n.scale for n in terms.norms if n.scale is not None and n.scale.requires_grad)]


def pytorchs(terms: Terms, monkeypatch) -> torch.Tensor:
    with monkeypatch.context() as m:
        m.setattr(normalized_sum, "native_applies", lambda *_: False)
        return terms.sum()


@needs_kernel
@pytest.mark.parametrize("case", ["16 channels", "32 channels", "no plain maps",
                                  "none weighted", "scales fixed", "one norm"])
def test_values_and_gradients_are_pytorchs(case: str, monkeypatch) -> None:
    options = {"16 channels": {}, "32 channels": {"channels": 32},
               "no plain maps": {"plain": 0, "weighted": ()}, "none weighted": {"weighted": ()},
               "scales fixed": {"scale_grad": False}, "one norm": {"norms": 1}}[case]
    terms = node(**options)
    assert normalized_sum.native_applies(terms.maps, terms.weights, terms.norms)
    ours, theirs = terms.sum(), pytorchs(terms, monkeypatch)
    assert ours.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    g = torch.randn(ours.shape)  # contiguous: another layout than the maps'
    inputs = inputs_of(terms)
    for a, b in zip(torch.autograd.grad(ours, inputs, g), torch.autograd.grad(theirs, inputs, g)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@needs_kernel
@pytest.mark.parametrize("offset", [0.0, 1e3, -1e4])
def test_the_moments_hold_for_a_mean_far_larger_than_the_spread(offset: float) -> None:
    """One pass over each z, its blocks about their first pixels: the normalised map as in
    float64 (up to the float32 rounding of the affine map itself) for channels whose mean is
    up to 3 x 10^4 times their spread (plain sums and squares in one float32 pass would lose
    the variance entirely)."""
    g = torch.Generator().manual_seed(3)
    z = (offset + 0.3 * torch.randn(3, 16, 11, 13, generator=g)).contiguous(
        memory_format=torch.channels_last)
    terms = Terms()
    terms.add(Normalized(z, None, BN))
    assert normalized_sum.native_applies(terms.maps, terms.weights, terms.norms)
    exact = z.double() - z.double().mean(dim=(0, 2, 3), keepdim=True)
    exact = exact / torch.sqrt(exact.square().mean(dim=(0, 2, 3), keepdim=True) + BN.eps)
    rounding = 2 * 2**-23 * abs(offset) / 0.3  # two ulps of the largest a * z
    torch.testing.assert_close(terms.sum().double(), exact, rtol=0, atol=1e-5 + rounding)


@needs_kernel
def test_the_kernel_runs_only_where_it_applies() -> None:
    calls = []
    real = NormalizedSum.apply
    try:
        NormalizedSum.apply = lambda *a: calls.append(1) or real(*a)  # type: ignore[method-assign]
        node().sum()
        assert calls
        calls.clear()
        node(layout=torch.contiguous_format).sum()
        node(norms=0).sum()
        assert not calls
    finally:
        NormalizedSum.apply = real  # type: ignore[method-assign]


@needs_kernel
def test_double_backward_goes_through_pytorch(monkeypatch) -> None:
    terms = node(plain=2, weighted=(1,), norms=2)
    second = []
    for total in (terms.sum(), pytorchs(terms, monkeypatch)):
        d_scale = torch.autograd.grad(total.square().sum(), terms.norms[0].scale,
                                      create_graph=True)[0]
        second.append(torch.autograd.grad(d_scale, [terms.norms[0].z, terms.weights[1]]))
    for a, b in zip(*second):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", ["NCHW", "float64", "two epsilons", "strides differ",
                                  "24 channels"])
def test_falls_back_where_the_kernel_does_not_apply(case: str) -> None:
    terms = node(layout=torch.contiguous_format if case == "NCHW" else torch.channels_last,
                 channels=24 if case == "24 channels" else 16)
    if case == "float64":
        terms = Terms([x.double() for x in terms.maps],
                      [None if w is None else w.double() for w in terms.weights],
                      [Normalized(n.z.double(), n.scale.double(), n.bn) for n in terms.norms])
    if case == "two epsilons":
        other = nn.BatchNorm2d(16, eps=1e-3, affine=False, track_running_stats=False)
        terms.norms[0] = Normalized(terms.norms[0].z, terms.norms[0].scale, other)
    if case == "strides differ":
        terms.maps[0] = terms.maps[0].contiguous()
    assert not normalized_sum.native_applies(terms.maps, terms.weights, terms.norms)
    expected = sum((x if w is None else w * x) for x, w in zip(terms.maps, terms.weights)) + sum(
        n.scale * n.bn(n.z) for n in terms.norms)
    torch.testing.assert_close(terms.sum(), expected, rtol=1e-5, atol=1e-5)


def test_an_op_defers_only_a_batchnorm_the_sum_can_normalise_through() -> None:
    x = torch.randn(2, 16, 5, 5)
    scale = torch.tensor(0.5)
    searching = ReLUConvBN(16, 16, 3, affine=False, track_running_stats=False)
    deferred = run_deferred(searching, x, scale)
    assert isinstance(deferred, Normalized) and deferred.scale is scale
    torch.testing.assert_close(deferred.scale * deferred.bn(deferred.z), scale * searching(x))
    for bn in ({"affine": True, "track_running_stats": False},
               {"affine": False, "track_running_stats": True}):
        assert isinstance(run_deferred(ReLUConvBN(16, 16, 3, **bn), x, scale), torch.Tensor)


@needs_kernel
@pytest.mark.parametrize("name", ["nb201", "darts"])
def test_relaxed_nodes_summed_in_one_pass_compute_the_edge_by_edge_sums(name: str,
                                                                      monkeypatch) -> None:
    """float32, channels_last (where the kernels apply): the supernet's output and gradients
    with each node's ops gathered into one sum, and with each edge's mixed op run and added on
    its own."""
    space = SPACES.create(name)
    size = {"cells_per_stage": 1} if name == "nb201" else {"cells": 3}
    torch.manual_seed(0)
    model = space.supernet(channels=16, num_classes=3, **size)
    model = model.to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(1)
    alphas = [torch.randn(d.n_options, generator=g).requires_grad_()
              for d in space.relaxed_decisions()]
    x = torch.randn(4, 3, 8, 8, generator=g).contiguous(memory_format=torch.channels_last)

    def output_and_grads():
        y = model(x, Relaxed(tuple(torch.softmax(a, 0) for a in alphas)))
        return y, torch.autograd.grad(y.square().sum(), [*alphas, *model.parameters()])

    calls: list[str] = []
    for function in (WeightedSum, NormalizedSum, SkipPool):
        real = function.apply
        monkeypatch.setattr(function, "apply", lambda *a, f=function, real=real:
                            calls.append(f.__name__) or real(*a))
    fused, fused_grads = output_and_grads()
    assert "NormalizedSum" in calls  # the nodes went through the kernel
    assert ("SkipPool" in calls) == (name == "nb201")  # NB201's skips and pooling too
    cell = NB201CellModule if name == "nb201" else SearchCell
    monkeypatch.setattr(cell, "relaxed_on_whole_channels", lambda self, sel: False)
    calls.clear()
    each, each_grads = output_and_grads()
    assert not calls
    torch.testing.assert_close(fused, each, rtol=1e-4, atol=1e-5)
    for a, b in zip(fused_grads, each_grads):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
