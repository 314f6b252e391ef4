"""DARTS' search network (quark0/darts ``cnn/model_search.py``, ``Network``): every cell the full
DAG, each of its 14 edges a mixed op over the 8 ``PRIMITIVES``.

A 3x3 conv stem to 3C channels + BN (affine, as the official stem: ``bn_affine`` and
``bn_track`` set the cells' BatchNorm, whose affine parameters the official search leaves out
so that op outputs stay comparable); ``cells`` cells (DARTS: 8 of 16 channels), reductions at
``cells // 3`` and ``2 * cells // 3``; global average pooling and a linear classifier. A cell
preprocesses its inputs with ReLU-1x1-BN (a factorized reduction after a reduction cell),
node j sums its edges from every earlier node, and the output concatenates the 4 nodes. Each
edge holds one module per op but ``none`` (named ``{i}_{j}_{op}``, as the evaluation network
names its ops): ReLU-conv-BN ops, pools followed by a BN (as the official ``MixedOp``),
``skip_connect`` as identity or, at stride 2, a factorized reduction.

``forward(x, path)``: ``path`` is a genotype (each edge runs its one op, the edges it leaves
out add nothing) or a :class:`~archsearch.nn.mixed.Relaxed` path, a weight vector over the 8
ops per edge (``DARTSSpace.relaxed_decisions``: the normal cell's 14 edges, then the
reduction cell's): each edge outputs the weighted sum of its ops (``none`` adds nothing, its
weight only takes its share of the softmax), every cell of a kind sharing the kind's weights.

``partial_channels=K`` (PC-DARTS, :mod:`archsearch.nn.partial`): each edge's ops are built at
C/K channels and see the first C/K channels of the edge's input, the rest bypass (max-pooled
at stride 2), shuffled back in; K = 1 (the default) is DARTS' supernet. A path's
``edge_weights`` (PC-DARTS' softmax(beta) per node) multiply each edge's output in its node's
sum. A genotype runs as its one-hot path (each edge weighing 1): with K > 1 every edge, the
ones it leaves out (``none``) too, still passes its bypassed channels, as the one-hot relaxed
edge does; K = 1 runs exactly the genotype's sub-network.

``edge_ops`` (P-DARTS' pruned stages): per relaxed decision (the normal cell's 14 edges, then
the reduction cell's), the ``PRIMITIVES`` indices the edge holds; only those ops are built, and a
path that asks an edge for another op is refused (a relaxed path gives such ops zero weight and
leaves them out of ``active``). By default every edge holds all 8. ``set_skip_dropout(p,
generator)``: in training mode, dropout at rate p on the output of every ``skip_connect`` that is
the identity (stride 1; P-DARTS' ``nn.Dropout`` after ``Identity``), its mask drawn from
``generator``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from archsearch.errors import ArchitectureError
from archsearch.nn.mixed import (
    Selector,
    add_maps,
    edge_weights,
    mix_scaled,
    mix_weighted,
    node_sum,
    relu_once,
    selectors,
    weigh,
)
from archsearch.nn.ops import (
    FactorizedReduce,
    ReLUConvBN,
    cat_channels,
    count_params_m,
    run_deferred,
    run_scaled,
    starts_with_relu,
)
from archsearch.nn.partial import check_partial, partial_edge
from archsearch.nn.terms import Terms
from archsearch.spaces.darts import EDGES, N_NODES, PRIMITIVES, SPACE
from archsearch.spaces.darts_network import make_search_op, op_key

SKIP = PRIMITIVES.index("skip_connect")
EdgeOps = tuple[tuple[int, ...], ...]  # per relaxed decision, the PRIMITIVES indices it holds


def check_edge_ops(edge_ops: Sequence[Sequence[int]] | None) -> EdgeOps:
    """``edge_ops`` as 28 sorted tuples of op indices (None: every op on every edge)."""
    n = 2 * len(EDGES)
    if edge_ops is None:
        return (tuple(range(len(PRIMITIVES))),) * n
    if len(edge_ops) != n:
        raise ValueError(f"edge_ops lists the ops of {n} edges (normal, then reduce), not "
                         f"{len(edge_ops)}")
    out = tuple(tuple(sorted({int(k) for k in ops})) for ops in edge_ops)
    bad = [e for e, ops in enumerate(out) if not ops or ops[0] < 0 or ops[-1] >= len(PRIMITIVES)]
    if bad:
        raise ValueError(f"edge_ops of edge {bad[0]}: {list(edge_ops[bad[0]])} must be op "
                         f"indices in 0..{len(PRIMITIVES) - 1}, at least one")
    return out


class SearchCell(nn.Module):
    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool,
                 bn: dict[str, bool], partial: int = 1, edge_ops: EdgeOps | None = None) -> None:
        super().__init__()
        self.reduction, self.partial = reduction, partial
        self.pre0 = (FactorizedReduce(c_pp, c, **bn) if reduction_prev
                     else ReLUConvBN(c_pp, c, 1, **bn))
        self.pre1 = ReLUConvBN(c_p, c, 1, **bn)
        held = edge_ops or check_edge_ops(None)[:len(EDGES)]
        self.ops = nn.ModuleDict({  # each edge's ops but none, at the edge's stride
            op_key(i, j, PRIMITIVES[k]): make_search_op(PRIMITIVES[k], c // partial,
                                                        self.stride(i), **bn)
            for (j, i), ops in zip(EDGES, held) for k in ops if k != 0})
        self.skip_dropout: tuple[float, torch.Generator | None] = (0.0, None)
        self.c_out = N_NODES * c

    def stride(self, i: int) -> int:
        return 2 if self.reduction and i < 2 else 1

    def op(self, i: int, j: int, k: int, x: torch.Tensor,
           activated: Callable[[], torch.Tensor] | None = None,
           scale: torch.Tensor | None = None, defer: bool = False) -> Any:
        """Op k (a ``PRIMITIVES`` index) of the edge from node i to node j on x, times
        ``scale`` (its mixing weight, folded into the op's last BatchNorm; None: 1; none:
        None); an identity skip's output dropped out at the ``skip_dropout`` rate when
        training. ``activated()``: relu(x), computed once for all of node i's ReLU-first ops.
        ``defer``: a last BatchNorm is left to the node's sum (``ops.run_deferred``)."""
        if k == 0:
            return None
        op = self.held_op(i, j, k)
        p, generator = self.skip_dropout
        if k == SKIP and p > 0 and self.training and self.stride(i) == 1:
            y = op(x)
            y = y * torch.empty_like(y).bernoulli_(1 - p, generator=generator) / (1 - p)
            return weigh(y, scale)
        relu = activated() if activated is not None and starts_with_relu(op) else None
        return (run_deferred if defer else run_scaled)(op, x, scale, relu)

    def held_op(self, i: int, j: int, k: int) -> nn.Module:
        """Op k (not none) of the edge from node i to node j (refused if edge_ops left it out)."""
        key = op_key(i, j, PRIMITIVES[k])
        if key not in self.ops:
            raise ArchitectureError(f"the supernet's edge {i}->{j} holds no {PRIMITIVES[k]} "
                                    "(edge_ops left it out)")
        return self.ops[key]

    def edge(self, i: int, j: int, x: torch.Tensor, sel: Selector,
             activated: Callable[[], torch.Tensor] | None = None,
             weight: torch.Tensor | None = None) -> torch.Tensor | None:
        """The edge from node i to node j on x: its chosen op, or its ops' weighted sum (on
        the first C/K channels, the rest bypassing, when partial; ``activated`` then unused),
        times ``weight`` (its weight in its node's sum; None: 1)."""
        if self.partial == 1:
            return weigh(mix_scaled(sel, lambda k, w: self.op(i, j, k, x, activated, w)),
                         weight)

        def mixed(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor | None:
            return mix_weighted(sel, lambda k, w: self.op(i, j, k, x, scale=w), weight)

        return partial_edge(x, self.partial, self.stride(i), mixed, weight)

    def relaxed_on_whole_channels(self, sel: Selector) -> bool:
        """Whether an edge's ops join its node's sum one by one: weights over several ops
        (not a choice, a straight-through sample or one active op: those run as the edge's
        own mixed op) on whole channels (not PC-DARTS' partial edges)."""
        return self.partial == 1 and isinstance(sel, tuple) and len(sel[1]) > 1

    def add_terms(self, i: int, j: int, x: torch.Tensor, sel: Selector,
                  edge_weight: torch.Tensor | None, activated: Callable[[], torch.Tensor],
                  terms: Terms) -> None:
        """The edge's ops on x into its node's sum, each times its weight (times the edge's
        weight, if any): folded into the op's last BatchNorm, or, for an identity skip (at
        stride 1) not dropped out, x itself and its weight."""
        w, active = sel  # type: ignore[misc]
        dropping = self.skip_dropout[0] > 0 and self.training
        for k in active:
            scale = w[k] if edge_weight is None else w[k] * edge_weight
            if k == SKIP and not dropping and isinstance(self.held_op(i, j, k), nn.Identity):
                terms.add(x, scale)
            elif k != 0:
                terms.add(self.op(i, j, k, x, activated, scale, defer=True))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, sels: list[Selector],
                weights: list[torch.Tensor | None]) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]  # (B, C, H, W) each
        stride = 2 if self.reduction else 1

        def zeros() -> torch.Tensor:  # a node whose every edge is none
            return states[1][:, :, ::stride, ::stride].mul(0.0)

        activated = [relu_once(s) for s in states]  # node i's ReLU, when first asked for
        e = 0
        for j in range(2, N_NODES + 2):
            terms = Terms()  # the node's sum over the relaxed edges' ops, taken in one pass
            rest = None  # the edges that run as themselves (a choice, a sample, partial)
            for i in range(j):
                if self.relaxed_on_whole_channels(sels[e]):
                    self.add_terms(i, j, states[i], sels[e], weights[e], activated[i], terms)
                else:
                    rest = add_maps(rest, self.edge(i, j, states[i], sels[e], activated[i],
                                                    weights[e]))
                e += 1
            total = add_maps(terms.sum(), rest)  # (B, C, H', W')
            states.append(node_sum(total, zeros))
            activated.append(relu_once(states[-1]))
        return cat_channels(states[2:])  # (B, 4C, H', W')


class DARTSSupernet(nn.Module):
    """Stem -> ``cells`` search cells -> pool -> linear; ``forward(x, path)``."""

    def __init__(self, channels: int = 16, cells: int = 8, num_classes: int = 10,
                 in_channels: int = 3, bn: dict[str, bool] | None = None,
                 stem_multiplier: int = 3, partial_channels: int = 1,
                 edge_ops: Sequence[Sequence[int]] | None = None) -> None:
        super().__init__()
        if cells < 1:
            raise ValueError(f"a DARTS supernet needs at least 1 cell, not {cells}")
        check_partial(channels, partial_channels)
        self.partial_channels = partial_channels
        self.edge_ops = check_edge_ops(edge_ops)
        n = len(EDGES)
        bn = {"affine": False, "track_running_stats": False, **(bn or {})}
        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_stem, track_running_stats=bn["track_running_stats"]))
        reductions = (cells // 3, 2 * cells // 3)
        c_pp, c_p, c = c_stem, c_stem, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for k in range(cells):
            reduction = k in reductions
            c = 2 * c if reduction else c
            held = self.edge_ops[n:] if reduction else self.edge_ops[:n]
            cell = SearchCell(c_pp, c_p, c, reduction, reduction_prev, bn, partial_channels, held)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.c_out
        self.classifier = nn.Linear(c_p, num_classes)

    def set_skip_dropout(self, p: float, generator: torch.Generator | None = None) -> None:
        """Dropout at rate p on every identity skip's output when training (P-DARTS), its masks
        drawn from ``generator`` (None: torch's global one); 0 turns it off."""
        for cell in self.cells:
            cell.skip_dropout = (float(p), generator)

    def forward(self, x: torch.Tensor, path: Any) -> torch.Tensor:
        sels = selectors(SPACE, path)  # 28: per edge an op index, or weights over the 8 ops
        weights = edge_weights(SPACE, path)  # 28: per edge its weight in its node, or None
        n = len(EDGES)
        s0 = s1 = self.stem(x)  # (B, 3C, H, W)
        for cell in self.cells:
            k = n if cell.reduction else 0
            s0, s1 = s1, cell(s0, s1, sels[k:k + n], weights[k:k + n])  # (B, 4C, H', W')
        return self.classifier(s1.mean(dim=(2, 3)))  # (B, classes)

    def option_params_m(self) -> list[list[float]]:
        """Per relaxed decision (the normal cell's edges, then the reduction cell's), per op:
        the parameters (millions) that op holds in all the cells of that type (``none``: 0)."""
        out = []
        for reduction in (False, True):
            cells = [c for c in self.cells if c.reduction == reduction]
            out += [[0.0] + [sum(count_params_m(c.ops[op_key(i, j, name)]) for c in cells)
                             for name in PRIMITIVES[1:]] for j, i in EDGES]
        return out
