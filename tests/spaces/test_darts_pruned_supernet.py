"""P-DARTS' supernet abilities on the darts space: ``edge_ops`` builds only each edge's listed
ops, which compute what the full supernet computes on weights zero elsewhere, and refuses a
path that asks for another; skip dropout drops the identity skip's output in training mode
only; ``derive_capped`` zeroes the weakest skips of the normal cell until at most the cap
remain, and leaves a cell with fewer as ``derive`` has it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from archsearch.errors import ArchitectureError
from archsearch.nn.mixed import Relaxed
from archsearch.spaces.darts import EDGES, PRIMITIVES, DARTSSpace
from archsearch.spaces.darts_network import op_key
from archsearch.spaces.darts_supernet import SKIP

SPACE = DARTSSpace()
NET = {"channels": 4, "cells": 3, "num_classes": 3}  # cells: normal, reduce, reduce


def cell_ops(net: nn.Module) -> dict[str, nn.Module]:
    """The search cells' ops by name (``cells.K.ops.I_J_OP``)."""
    return {n: m for n, m in net.named_modules() if ".ops." in n and n.count(".") == 3}


def ops_run(net: nn.Module, forward: Callable[[], Any]) -> tuple[list[str], Any]:
    """The names of the cell ops ``forward()`` runs (once per call), and its output."""
    ran: list[str] = []
    hooks = [m.register_forward_hook(lambda *_, n=n: ran.append(n))
             for n, m in cell_ops(net).items()]
    try:
        return ran, forward()
    finally:
        for h in hooks:
            h.remove()


def held_ops(seed: int = 0, k: int = 3) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [sorted(int(j) for j in rng.choice(len(PRIMITIVES), k, replace=False))
            for _ in range(2 * len(EDGES))]


def test_edge_ops_builds_only_the_listed_ops_and_computes_as_the_full_supernet() -> None:
    held = held_ops()
    torch.manual_seed(0)
    full = SPACE.supernet(**NET).double()
    pruned = SPACE.supernet(**NET, edge_ops=held).double()
    for cell in pruned.cells:
        mine = held[len(EDGES):] if cell.reduction else held[:len(EDGES)]
        assert set(cell.ops) == {op_key(i, j, PRIMITIVES[k]) for (j, i), ops in zip(EDGES, mine)
                                 for k in ops if k != 0}
    assert pruned.edge_ops == tuple(map(tuple, held))
    pruned.load_state_dict({k: v for k, v in full.state_dict().items()  # the same weights
                            if k in pruned.state_dict()})
    g = torch.Generator().manual_seed(1)
    weights = []
    for ops in held:  # softmax over the held ops, zeros elsewhere
        w = torch.zeros(len(PRIMITIVES), dtype=torch.float64)
        w[ops] = F.softmax(torch.randn(len(ops), generator=g, dtype=torch.float64), 0)
        weights.append(w)
    x = torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64)
    ran, got = ops_run(pruned, lambda: pruned(x, Relaxed(tuple(weights),
                                                         active=tuple(map(tuple, held)))))
    # every op it holds ran, once (an identity skip adds its input to the node's sum as it is)
    assert sorted(ran) == sorted(n for n, m in cell_ops(pruned).items()
                                 if not isinstance(m, nn.Identity))
    torch.testing.assert_close(got, full(x, Relaxed(tuple(weights))), rtol=0, atol=1e-12)
    missing = next(k for k in range(1, len(PRIMITIVES)) if k not in held[0])
    weights[0] = torch.eye(len(PRIMITIVES), dtype=torch.float64)[missing]
    with pytest.raises(ArchitectureError, match=f"edge 0->2 holds no {PRIMITIVES[missing]}"):
        pruned(x, Relaxed(tuple(weights)))
    with pytest.raises(ValueError, match="28 edges"):
        SPACE.supernet(**NET, edge_ops=held[:14])


def test_skip_dropout_drops_the_identity_skips_output_when_training_only() -> None:
    net = SPACE.supernet(**NET)
    normal, reduce = net.cells[0], net.cells[1]
    x, x_reduce = torch.randn(8, 4, 8, 8), torch.randn(8, 8, 8, 8)
    net.set_skip_dropout(0.4, torch.Generator().manual_seed(0))
    y = normal.op(0, 2, SKIP, x)
    kept = y != 0
    assert 0.3 < 1 - kept.float().mean() < 0.5  # about 40% dropped
    torch.testing.assert_close(y[kept], x[kept] / 0.6)
    net.set_skip_dropout(0.4, torch.Generator().manual_seed(0))
    assert torch.equal(normal.op(0, 2, SKIP, x), y)  # its masks come from the generator
    assert (reduce.op(2, 3, SKIP, x_reduce) == 0).any()  # stride 1 in a reduction cell too
    factorized = reduce.op(0, 2, SKIP, x_reduce)  # stride 2: a factorized reduction, kept
    torch.testing.assert_close(factorized, reduce.ops[op_key(0, 2, "skip_connect")](x_reduce))
    sep = PRIMITIVES.index("sep_conv_3x3")
    torch.testing.assert_close(normal.op(0, 2, sep, x),
                               normal.ops[op_key(0, 2, "sep_conv_3x3")](x))
    net.eval()
    assert torch.equal(normal.op(0, 2, SKIP, x), x)
    net.train()
    net.set_skip_dropout(0.0)
    assert torch.equal(normal.op(0, 2, SKIP, x), x)


def edge(j: int, i: int) -> int:
    return EDGES.index((j, i))


def capped_weights() -> list[torch.Tensor]:
    """A normal cell whose derive holds 5 skips: edges 2<-0 (0.9), 3<-0 (0.8), 4<-0 (0.6),
    2<-1 (0.3), 3<-1 (0.25); the reduction cell 4 skips."""
    op = PRIMITIVES.index
    normal = torch.full((14, 8), 0.01)
    for (j, i), name, w in [((2, 0), "skip_connect", 0.9), ((2, 1), "skip_connect", 0.3),
                            ((2, 1), "sep_conv_3x3", 0.2), ((3, 0), "skip_connect", 0.8),
                            ((3, 1), "skip_connect", 0.25), ((3, 1), "dil_conv_3x3", 0.05),
                            ((3, 2), "max_pool_3x3", 0.1), ((4, 0), "skip_connect", 0.6),
                            ((4, 3), "sep_conv_5x5", 0.5), ((4, 2), "dil_conv_5x5", 0.2),
                            ((5, 4), "avg_pool_3x3", 0.7), ((5, 1), "sep_conv_3x3", 0.4)]:
        normal[edge(j, i), op(name)] = w
    reduce = torch.full((14, 8), 0.01)
    reduce[[edge(2, 0), edge(2, 1), edge(3, 0), edge(4, 3)], op("skip_connect")] = 0.5
    return list(normal) + list(reduce)


def test_derive_capped_keeps_the_strongest_skips_and_gives_the_others_their_next_op() -> None:
    weights = capped_weights()
    plain = SPACE.derive(weights)
    assert sum(op == "skip_connect" for node in plain.normal for op, _ in node) == 5
    arch = SPACE.derive_capped(weights, 2)
    assert arch.normal == ((("skip_connect", 0), ("sep_conv_3x3", 1)),  # 2<-1: its next op
                           (("skip_connect", 0), ("max_pool_3x3", 2)),  # 3<-1 lost to 3<-2
                           (("dil_conv_5x5", 2), ("sep_conv_5x5", 3)),  # 4<-0 lost to 4<-2
                           (("sep_conv_3x3", 1), ("avg_pool_3x3", 4)))
    assert arch.reduce == plain.reduce  # the reduction cell is not capped
    three = SPACE.derive_capped(weights, 3)
    assert sum(op == "skip_connect" for node in three.normal for op, _ in node) == 3
    assert three.normal[2] == (("skip_connect", 0), ("sep_conv_5x5", 3))  # 0.6 kept
    assert SPACE.derive_capped(weights, 8) == plain
    assert sum(op == "skip_connect" for node in SPACE.derive_capped(weights, 0).normal
               for op, _ in node) == 0


def test_derive_capped_leaves_a_cell_with_fewer_skips_as_derive_has_it() -> None:
    weights = capped_weights()
    for e in (edge(2, 1), edge(3, 0), edge(3, 1), edge(4, 0)):  # only 2<-0 a skip
        weights[e] = weights[e].clone()
        weights[e][SKIP] = 0.0
    plain = SPACE.derive(weights)
    assert sum(op == "skip_connect" for node in plain.normal for op, _ in node) == 1
    assert SPACE.derive_capped(weights, 2) == plain  # 1 skip stays 1: no skip is added
