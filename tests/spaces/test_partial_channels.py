"""PC-DARTS' supernet options on the darts and nb201 supernets: with K = 1 and no edge weights
the supernet is the plain one, exactly; with K > 1 only the first C/K channels of an edge go
through its ops (built at C/K channels), the rest bypass (max-pooled at stride 2) and the two
are channel-shuffled by the documented permutation; ``none`` and zero weights are still
skipped; a genotype runs as its one-hot path; edge weights weigh each edge in its node's sum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from archsearch.errors import ArchitectureError, UserError
from archsearch.nn.mixed import Relaxed, one_hot
from archsearch.nn.partial import channel_shuffle
from archsearch.registry import SPACES
from archsearch.spaces.darts import EDGES as DARTS_EDGES
from archsearch.spaces.darts import PRIMITIVES
from archsearch.spaces.darts_network import op_key
from archsearch.spaces.nb201 import EDGES as NB201_EDGES
from archsearch.spaces.nb201 import NB201CellModule

NETS = {"darts": {"channels": 8, "cells": 3}, "nb201": {"channels": 8, "cells_per_stage": 1}}


def supernet(name: str, **options):
    space = SPACES.create(name)
    torch.manual_seed(0)
    return space, space.supernet(num_classes=3, **{**NETS[name], **options}).double()


def random_path(space, seed: int = 0) -> Relaxed:
    g = torch.Generator().manual_seed(seed)
    return Relaxed(tuple(F.softmax(torch.randn(d.n_options, generator=g, dtype=torch.float64), 0)
                         for d in space.relaxed_decisions()))


def images(seed: int = 1) -> torch.Tensor:
    return torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def shuffle_permutation(channels: int, groups: int) -> list[int]:
    """Output channel o reads input channel perm[o]: j * groups + g reads g * C/groups + j."""
    per = channels // groups
    return [g * per + j for j in range(per) for g in range(groups)]


# ---- K = 1: the plain supernet --------------------------------------------------------------

@pytest.mark.parametrize("name", list(NETS))
def test_k1_and_unit_edge_weights_are_the_plain_supernet_exactly(name: str) -> None:
    space, plain = supernet(name)
    _, k1 = supernet(name, partial_channels=1)
    assert [(n, p.shape) for n, p in plain.state_dict().items()] == \
        [(n, p.shape) for n, p in k1.state_dict().items()]
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                 k1.state_dict().values()))
    x, path = images(), random_path(space)
    expected = plain(x, path)
    ones = torch.ones(len(space.relaxed_decisions()), dtype=torch.float64)
    assert torch.equal(k1(x, path), expected)
    assert torch.equal(k1(x, Relaxed(path.weights, edge_weights=ones)), expected)
    arch = space.sample(np.random.default_rng(0))
    assert torch.equal(k1(x, arch), plain(x, arch))


# ---- K > 1: partial channels ------------------------------------------------------------------

def test_channel_shuffle_is_the_documented_permutation() -> None:
    x = torch.arange(2 * 8 * 3 * 3, dtype=torch.float64).reshape(2, 8, 3, 3)
    assert shuffle_permutation(8, 4) == [0, 2, 4, 6, 1, 3, 5, 7]
    assert torch.equal(channel_shuffle(x, 4), x[:, [0, 2, 4, 6, 1, 3, 5, 7]])
    assert torch.equal(channel_shuffle(x, 2), x[:, [0, 4, 1, 5, 2, 6, 3, 7]])
    assert torch.equal(channel_shuffle(x, 1), x)
    last = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(channel_shuffle(last, 4), channel_shuffle(x, 4))


def test_the_ops_are_built_at_c_over_k_channels() -> None:
    _, darts = supernet("darts", partial_channels=4)
    for cell in darts.cells:
        c = cell.c_out // 4  # the cell's channels per node
        bns = [m for m in cell.ops.modules() if isinstance(m, nn.BatchNorm2d)]
        assert bns and all(m.num_features == c // 4 for m in bns)
        sep = cell.ops[op_key(0, 2, "sep_conv_3x3")]
        assert sum(p.numel() for p in sep.parameters()) == 2 * (c // 4) * (9 + c // 4)
    _, nb201 = supernet("nb201", partial_channels=4)
    for cell, c in zip([m for m in nb201.cells if isinstance(m, NB201CellModule)], (8, 16, 32)):
        for edge in cell.ops:
            assert sum(p.numel() for p in edge["nor_conv_3x3"].parameters()) == (c // 4) ** 2 * 9
            assert sum(p.numel() for p in edge["nor_conv_1x1"].parameters()) == (c // 4) ** 2


@pytest.mark.parametrize("stride", [1, 2])
def test_an_edge_runs_its_ops_on_the_first_c_over_k_channels_and_bypasses_the_rest(
        stride: int) -> None:
    _, net = supernet("darts", partial_channels=4)
    cell = net.cells[1] if stride == 2 else net.cells[0]  # 3 cells: the second reduces
    c = cell.c_out // 4
    assert cell.reduction == (stride == 2)
    w = torch.zeros(8, dtype=torch.float64)
    w[PRIMITIVES.index("sep_conv_3x3")], w[PRIMITIVES.index("max_pool_3x3")] = 0.7, 0.3
    sel = (w, tuple(range(8)))
    x = torch.randn(4, c, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    y = cell.edge(0, 2, x, sel)
    assert y.shape == (4, c, 8 // stride, 8 // stride)
    ops = cell.ops
    part = (0.7 * ops[op_key(0, 2, "sep_conv_3x3")](x[:, :c // 4])
            + 0.3 * ops[op_key(0, 2, "max_pool_3x3")](x[:, :c // 4]))
    bypass = x[:, c // 4:] if stride == 1 else F.max_pool2d(x[:, c // 4:], 2)
    expected = torch.cat([part, bypass], 1)[:, shuffle_permutation(c, 4)]
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)
    # the bypassed channels reach the output only through the bypass: the ops' channels
    # (every 4th after the shuffle) do not move, the others are the pooled perturbation
    moved = x.clone()
    moved[:, c // 4:] += torch.randn_like(moved[:, c // 4:])
    y2 = cell.edge(0, 2, moved, sel)
    assert torch.equal(y2[:, 0::4], y[:, 0::4])
    assert not torch.allclose(y2, y)
    pooled = moved[:, c // 4:] if stride == 1 else F.max_pool2d(moved[:, c // 4:], 2)
    assert torch.equal(y2, torch.cat([y[:, 0::4], pooled], 1)[:, shuffle_permutation(c, 4)])


def test_none_and_zero_weights_are_not_computed_and_a_none_edge_passes_the_bypass() -> None:
    space, net = supernet("darts", partial_channels=4)
    calls: list[tuple[int, str]] = []
    for k, cell in enumerate(net.cells):
        for name, op in cell.ops.items():
            op.register_forward_hook(lambda *_, key=(k, name): calls.append(key))
    w = torch.zeros(8, dtype=torch.float64)
    w[PRIMITIVES.index("none")], w[PRIMITIVES.index("skip_connect")] = 0.4, 0.6
    net(images(3), Relaxed((w,) * len(space.relaxed_decisions())))
    assert sorted(calls) == sorted((k, op_key(i, j, "skip_connect"))
                                   for k in range(len(net.cells)) for j, i in DARTS_EDGES)
    cell, x = net.cells[0], images(3)[:, :1].repeat(1, 8, 1, 1)
    none = torch.eye(8, dtype=torch.float64)[0]
    y = cell.edge(1, 3, x, (none, (0,)))  # nothing computed: zeros where the ops' output goes
    assert len(calls) == 14 * len(net.cells)
    bypassed = torch.cat([torch.zeros_like(x[:, :2]), x[:, 2:]], 1)
    assert torch.equal(y, bypassed[:, [0, 2, 4, 6, 1, 3, 5, 7]])


@pytest.mark.parametrize("name", list(NETS))
def test_a_genotype_runs_as_its_one_hot_path_with_partial_channels(name: str) -> None:
    space, net = supernet(name, partial_channels=4)
    x = images()
    rng = np.random.default_rng(4)
    for _ in range(3):
        arch = space.sample(rng)
        path = Relaxed(tuple(w.double() for w in one_hot(space, arch).weights))
        torch.testing.assert_close(net(x, arch), net(x, path), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(NETS))
def test_k_must_divide_the_channels(name: str) -> None:
    with pytest.raises(UserError, match="partial_channels must be a positive divisor"):
        supernet(name, partial_channels=3)
    with pytest.raises(UserError, match="partial_channels"):
        supernet(name, partial_channels=0)


# ---- edge weights ------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 4])
def test_nb201_nodes_sum_their_edges_times_their_edge_weights(k: int) -> None:
    space, net = supernet("nb201", partial_channels=k)
    cell = net.cells[0]
    x = images(5)[:, :1].repeat(1, 8, 1, 1) * torch.randn(1, 8, 1, 1, dtype=torch.float64)
    sels = [(w, tuple(range(5))) for w in random_path(space, 3).weights]

    def edge(to: int, source: int, h: torch.Tensor) -> torch.Tensor:
        e = NB201_EDGES.index((to, source))
        return cell.edge(e, h, sels[e])

    # uniform per node: node j is the mean of its incoming edges (computed here by hand)
    mean = torch.tensor([1, 1 / 2, 1 / 2, 1 / 3, 1 / 3, 1 / 3], dtype=torch.float64)
    n1 = edge(1, 0, x)
    n2 = (edge(2, 0, x) + edge(2, 1, n1)) / 2
    n3 = (edge(3, 0, x) + edge(3, 1, n1) + edge(3, 2, n2)) / 3
    torch.testing.assert_close(cell(x, sels, list(mean)), n3, rtol=0, atol=1e-12)
    # all of node 3's weight on its edge from the input: the output is that edge's output
    strong = torch.tensor([1.0, 0.5, 0.5, 1.0, 0.0, 0.0], dtype=torch.float64)
    # (equal up to rounding: the cell pools the weighted sum of its pooled inputs once)
    torch.testing.assert_close(cell(x, sels, list(strong)), edge(3, 0, x), rtol=0, atol=1e-12)


def test_darts_nodes_sum_their_edges_times_their_edge_weights() -> None:
    space, net = supernet("darts", partial_channels=4)
    cell = net.cells[0]
    s0 = s1 = net.stem(images(6))
    sels = [(w, tuple(range(8))) for w in random_path(space, 4).weights][:14]
    weights = torch.full((14,), 0.5, dtype=torch.float64)
    weights[[0, 1]] = torch.tensor([0.0, 1.0], dtype=torch.float64)  # node 2: only from node 1
    out = cell(s0, s1, sels, list(weights))  # (B, 4C, H, W): nodes 2..5
    c = cell.c_out // 4
    expected = cell.edge(1, 2, cell.pre1(s1), sels[DARTS_EDGES.index((2, 1))])
    assert torch.equal(out[:, :c], expected)


def test_edge_weights_reach_the_output_and_a_wrong_shape_is_refused() -> None:
    space, net = supernet("nb201", partial_channels=4)
    weights = torch.full((6,), 0.5, dtype=torch.float64, requires_grad=True)
    net(images(), Relaxed(random_path(space).weights, edge_weights=weights)).sum().backward()
    assert weights.grad is not None and bool((weights.grad != 0).all())
    with pytest.raises(ArchitectureError, match=r"edge_weights need shape \(6,\)"):
        net(images(), Relaxed(random_path(space).weights, edge_weights=torch.ones(5)))


@pytest.mark.parametrize("stride", [1, 2])
def test_a_partial_edges_weight_goes_into_its_parts_and_keeps_nothing_more_for_backward(
        stride: int) -> None:
    _, net = supernet("darts", partial_channels=4)
    cell = net.cells[1] if stride == 2 else net.cells[0]
    c = cell.c_out // 4
    sel = (F.softmax(torch.randn(8, generator=torch.Generator().manual_seed(3),
                                 dtype=torch.float64), 0), tuple(range(8)))
    x = torch.randn(4, c, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64,
                    requires_grad=True)
    weight = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    saved: dict[str, dict[int, int]] = {"weighted": {}, "unweighted": {}}
    outputs = {}
    for name, w in (("weighted", weight), ("unweighted", None)):
        def pack(t: torch.Tensor, into=saved[name]) -> torch.Tensor:
            into[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            outputs[name] = cell.edge(0, 2, x, sel, None, w)
    torch.testing.assert_close(outputs["weighted"], 0.3 * outputs["unweighted"],
                               rtol=1e-12, atol=1e-12)
    g = torch.randn_like(outputs["weighted"])
    (gw,) = torch.autograd.grad(outputs["weighted"], weight, g, retain_graph=True)
    torch.testing.assert_close(gw, (g * outputs["unweighted"]).sum(), rtol=1e-10, atol=1e-12)
    # the weight adds the pooled bypass at stride 2 (a view of x at stride 1, kept anyway)
    # and 0-d products of weights, never a copy of the edge's whole output
    extra = sum(saved["weighted"].values()) - sum(saved["unweighted"].values())
    bypass = 4 * (c - c // 4) * (8 // stride) ** 2 * 8 if stride == 2 else 0
    assert extra <= bypass + 8 * 16
