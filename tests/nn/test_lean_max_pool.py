"""lean_max_pool2d: PyTorch's max pooling, values and gradients (ties included) and double
backward alike, keeping only its input for the backward pass (no int64 indices)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from archsearch.nn.lean_max_pool import LeanMaxPool, lean_max_pool2d

WINDOWS = [(3, 1, 1, False), (3, 2, 1, False), (2, 2, 0, True), (2, 2, 0, False)]


def tied(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Small integers: many windows hold their maximum twice."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 4, shape, generator=g).double().requires_grad_()


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_values_and_gradients_are_pytorchs_ties_included(window, channels_last: bool) -> None:
    kernel, stride, padding, ceil = window
    x = tied((3, 4, 7, 9))
    if channels_last:
        x = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    g = torch.randn(F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil).shape,
                    generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (gx_ref,) = torch.autograd.grad(F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil), x, g)
    y = lean_max_pool2d(x, kernel, stride, padding, ceil)
    assert y.grad_fn is not None and "LeanMaxPool" in type(y.grad_fn).__name__
    assert torch.equal(y, F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil))
    (gx,) = torch.autograd.grad(y, x, g)
    assert torch.equal(gx, gx_ref)


def test_only_the_input_is_kept_for_backward() -> None:
    base = torch.randn(2, 16, 8, 8, requires_grad=True)
    x = base[:, :4]  # a PC-DARTS edge's slice: a view of its node
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        lean_max_pool2d(x, 3, 1, 1).sum().backward()
    assert len(saved) == 1
    assert saved[0].untyped_storage().data_ptr() == base.untyped_storage().data_ptr()
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.max_pool2d(x, 3, 1, 1)  # the contrast: PyTorch keeps int64 indices too
    assert any(t.dtype == torch.int64 for t in saved)


def test_double_backward_matches_pytorchs() -> None:
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    out = []
    for pool in (lambda t: lean_max_pool2d(t, 3, 2, 1), lambda t: F.max_pool2d(t, 3, 2, 1)):
        (gx,) = torch.autograd.grad(pool(x), x, g, create_graph=True)
        out.append(torch.autograd.grad((gx * v).sum(), g)[0])
    assert torch.equal(out[0], out[1])
    assert torch.autograd.gradcheck(lambda t: LeanMaxPool.apply(t, 3, 2, 1, False),
                                    (torch.randn(1, 2, 5, 5, dtype=torch.float64,
                                                 requires_grad=True),))


def test_without_a_gradient_to_keep_it_is_pytorchs_call() -> None:
    x = torch.randn(1, 2, 5, 5)
    assert lean_max_pool2d(x, 3, 1, 1).grad_fn is None
    with torch.no_grad():
        assert lean_max_pool2d(x.requires_grad_(), 3, 1, 1).grad_fn is None


def test_the_3x3_poolings_fallback_and_pc_darts_bypass_keep_no_indices() -> None:
    from archsearch.nn.partial import partial_edge
    from archsearch.nn.pool3x3 import max_pool3x3

    x = torch.randn(2, 8, 6, 6, requires_grad=True)  # 8 channels: no native kernel
    assert "LeanMaxPool" in type(max_pool3x3(x, 2).grad_fn).__name__
    names: list[str] = []

    def walk(fn) -> None:
        if fn is not None and type(fn).__name__ not in names:
            names.append(type(fn).__name__)
            for nxt, _ in fn.next_functions:
                walk(nxt)

    walk(partial_edge(x, 4, 2, lambda part, w: part[:, :, ::2, ::2] * 1.0).grad_fn)
    assert any("LeanMaxPool" in n for n in names)
    assert not any("MaxPool2DWithIndices" in n for n in names)


def test_a_traced_module_records_pytorchs_pooling() -> None:
    """``archsearch export`` traces networks whose parameters want gradients."""
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return lean_max_pool2d(self.conv(x), 3, 2, 1)

    traced = torch.jit.trace(Net(), torch.randn(1, 3, 6, 6))
    assert "max_pool2d" in str(traced.graph) and "LeanMaxPool" not in str(traced.graph)
