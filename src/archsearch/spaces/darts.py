"""The DARTS cell space (Liu et al., ICLR 2019): a normal and a reduction cell, each a DAG of
two inputs and four intermediate nodes.

Nodes 0 and 1 are the cell's inputs (the outputs of the two previous cells); intermediate node
j (2..5) sums one op applied to each of two *different* earlier nodes; the cell's output
concatenates the four intermediate nodes. In the reduction cell, ops reading a cell input
have stride 2. The ops are DARTS' ``PRIMITIVES`` without ``none`` (a derived cell never holds
it)::

    max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3,
    dil_conv_5x5

**The genotype** (:class:`DARTSGenotype`) is the official code's ``Genotype`` as a value: per
cell, per node, two ``(op, input)`` edges. A node's sum commutes, so its two edges are kept in
input order: DARTS' listing (strongest edge first) and any other order are the same value.
Canonical string (nodes in order, ``op~input`` per edge)::

    normal:sep_conv_3x3~0,sep_conv_3x3~1|...;reduce:max_pool_3x3~0,max_pool_3x3~1|...

Encoding, per cell (normal, then reduce), per node: the pair of inputs (one of the node's
C(j, 2) pairs, in :data:`PAIRS` order), the op on the lower input, the op on the upper one.
Every choice vector is a valid genotype, so sampling and mutation are the generic ones.

**The relaxation** (DARTS' search): every cell is the full DAG, 14 edges from each earlier node
to each intermediate node, each a weighted mix of all 8 ``PRIMITIVES`` (``none`` included). A
:class:`~archsearch.nn.mixed.Relaxed` path for the supernet is a weight vector over the 8 ops
per edge (``relaxed_decisions()``: the 14 normal edges, then the 14 reduction edges, in the
official ``alphas`` row order); a genotype runs as the one-hot path on its 16 edges. ``derive``
turns the weights into a genotype as the official ``genotype()`` does.

Networks (``build``: the evaluation network; ``supernet``: the search network) are in
:mod:`archsearch.spaces.darts_network` and :mod:`archsearch.spaces.darts_supernet`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archsearch.errors import ArchitectureError
from archsearch.registry import SPACES
from archsearch.spaces.base import Architecture, Graph, SearchSpace
from archsearch.types import Decision

# the official order (genotypes.py PRIMITIVES): the rows of alpha's columns
PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
OPS = PRIMITIVES[1:]  # what a derived cell may hold
CELLS = ("normal", "reduce")
N_NODES = 4  # intermediate nodes per cell
# (to_node, from_node) of every edge of the relaxed cell, in the official alphas' row order
EDGES = tuple((j + 2, i) for j in range(N_NODES) for i in range(j + 2))  # 14
# the input pairs node j + 2 may read, in the encoding's order
PAIRS = tuple(tuple(itertools.combinations(range(j + 2), 2)) for j in range(N_NODES))

Edge = tuple[str, int]  # (op, input node)
Node = tuple[Edge, Edge]  # the two edges, in input order


def _canonical_cell(kind: str, nodes: Sequence[Sequence[Edge]]) -> tuple[Node, ...]:
    """``nodes`` checked and as tuples, each node's edges in input order."""
    nodes = tuple(tuple(tuple(edge) for edge in node) for node in nodes)
    if len(nodes) != N_NODES:
        raise ArchitectureError(f"a DARTS {kind} cell has {N_NODES} nodes, got {len(nodes)}")
    out = []
    for j, node in enumerate(nodes):
        where = f"{kind} cell, node {j + 2}"
        if len(node) != 2 or any(len(edge) != 2 for edge in node):
            raise ArchitectureError(f"{where}: needs two (op, input) edges, got {node!r}")
        for op, src in node:
            if op == "none":
                raise ArchitectureError(f"{where}: 'none' is not an op of a derived cell "
                                        f"(valid: {', '.join(OPS)})")
            if op not in OPS:
                raise ArchitectureError(f"{where}: unknown op {op!r}; valid ops: "
                                        f"{', '.join(OPS)}")
            if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < j + 2:
                raise ArchitectureError(f"{where}: reads node {src!r}, must be in 0..{j + 1}")
        if node[0][1] == node[1][1]:
            raise ArchitectureError(f"{where}: both edges read node {node[0][1]}; a node "
                                    "reads two different nodes")
        out.append(tuple(sorted(node, key=lambda edge: edge[1])))
    return tuple(out)  # type: ignore[return-value]


@dataclass(frozen=True)
class DARTSGenotype(Architecture):
    """Two ``(op, input)`` edges per node of each cell (canonical: each node's in input order)."""

    normal: tuple[Node, ...]
    reduce: tuple[Node, ...]
    space = "darts"

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal", _canonical_cell("normal", self.normal))
        object.__setattr__(self, "reduce", _canonical_cell("reduce", self.reduce))

    @classmethod
    def from_pairs(cls, normal: Sequence[Edge], reduce: Sequence[Edge]) -> DARTSGenotype:
        """From the official ``Genotype``'s flat lists of 8 ``(op, input)`` pairs a cell."""
        cells = []
        for kind, pairs in (("normal", normal), ("reduce", reduce)):
            if len(pairs) != 2 * N_NODES:
                raise ArchitectureError(f"a DARTS {kind} cell lists {2 * N_NODES} (op, input) "
                                        f"pairs, got {len(pairs)}")
            cells.append([pairs[2 * j:2 * j + 2] for j in range(N_NODES)])
        return cls(*cells)  # type: ignore[arg-type]

    def cell(self, kind: str) -> tuple[Node, ...]:
        return self.normal if kind == "normal" else self.reduce

    def to_str(self) -> str:
        return ";".join(f"{kind}:" + "|".join(",".join(f"{op}~{i}" for op, i in node)
                                              for node in self.cell(kind)) for kind in CELLS)


def parse_darts(text: str) -> DARTSGenotype:
    parts = text.strip().replace(" ", "").split(";")
    if len(parts) != 2:
        raise ArchitectureError(f"DARTS string: expected 'normal:...;reduce:...', found "
                                f"{len(parts)} part(s)")
    cells = []
    for kind, part in zip(CELLS, parts):
        head, sep, body = part.partition(":")
        if head != kind or not sep:
            raise ArchitectureError(f"DARTS string: part {kind!r} must start with '{kind}:'")
        nodes = body.split("|")
        if len(nodes) != N_NODES:
            raise ArchitectureError(f"DARTS string, {kind} cell: expected {N_NODES} nodes "
                                    f"separated by '|', found {len(nodes)}")
        cell = []
        for j, node in enumerate(nodes):
            edges = []
            for token in node.split(","):
                op, tilde, src = token.partition("~")
                if not tilde or not src.isdigit() or not op:
                    raise ArchitectureError(f"DARTS string, {kind} cell, node {j + 2} "
                                            f"({token!r}): expected 'op~input'")
                edges.append((op, int(src)))
            cell.append(edges)
        cells.append(cell)
    return DARTSGenotype(*cells)  # type: ignore[arg-type]


# DARTS' published cells (quark0/darts cnn/genotypes.py): first and second order
DARTS_V1 = DARTSGenotype.from_pairs(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)])
DARTS_V2 = DARTSGenotype.from_pairs(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)])


def derive_cell(weights: Sequence[torch.Tensor]) -> tuple[Node, ...]:
    """One cell's genotype from its 14 edges' op weights (``EDGES`` order), as the official
    ``genotype()``: per node, the two incoming edges whose strongest non-``none`` op weighs
    most (ties: the lower input), each with that op (ties: the earlier op)."""
    rows = torch.stack([w.detach().float().cpu() for w in weights])  # (14, 8)
    strongest, ops = rows[:, 1:].max(dim=1)  # per edge: best non-none weight, its op - 1
    nodes, start = [], 0
    for j in range(N_NODES):
        inputs = range(j + 2)
        ranked = sorted(inputs, key=lambda i: -float(strongest[start + i]))[:2]  # stable
        nodes.append(tuple((OPS[int(ops[start + i])], i) for i in ranked))
        start += j + 2
    return tuple(nodes)  # type: ignore[return-value]


def derive_cell_capped(weights: Sequence[torch.Tensor], max_skips: int) -> tuple[Node, ...]:
    """:func:`derive_cell` with at most ``max_skips`` skip connections, as P-DARTS restricts
    its normal cell (chenxin061/pdarts ``train_search.py``: ``delete_min_sk_prob``,
    ``keep_1_on``, ``keep_2_branches``): while the derived cell holds more, the weight of its
    weakest skip (ties: the first edge) is zeroed and the cell derived again, so that edge takes
    its next best op and may lose its place to another edge. A cell with fewer is unchanged."""
    rows = torch.stack([w.detach().float().cpu() for w in weights]).clone()  # (14, 8)
    skip = PRIMITIVES.index("skip_connect")
    cell = derive_cell(rows)
    for _ in range(len(EDGES)):  # a derived skip weighs > 0, so each round zeroes another
        skips = sorted(EDGES.index((j + 2, i)) for j, node in enumerate(cell)
                       for op, i in node if op == "skip_connect")
        if len(skips) <= max_skips:
            break
        rows[min(skips, key=lambda e: float(rows[e, skip])), skip] = 0.0
        cell = derive_cell(rows)
    return cell


@SPACES.register("darts")
class DARTSSpace(SearchSpace):
    """The DARTS space: 4 nodes a cell, 7 ops (8 with ``none`` in the relaxation), two cells."""

    name = "darts"
    # CPU-sized networks (the paper's: a 16-channel, 8-cell search network and a 36-channel,
    # 20-cell evaluation network; see supernet / build)
    presets = {"search": {"channels": 8, "cells": 5},
               "final": {"channels": 16, "cells": 8}}
    ops = OPS
    # its supernet deepens and holds fewer ops per edge (edge_ops): P-DARTS' stages
    prunable_supernet = True

    def __init__(self) -> None:
        self._decisions = tuple(
            d for kind in CELLS for j in range(N_NODES) for d in (
                Decision(f"{kind}/node{j + 2}/inputs", len(PAIRS[j]),
                         tuple(f"{a}+{b}" for a, b in PAIRS[j])),
                Decision(f"{kind}/node{j + 2}/op_low", len(OPS), OPS),
                Decision(f"{kind}/node{j + 2}/op_high", len(OPS), OPS)))
        self._relaxed = tuple(Decision(f"{kind}/edge{i}->{j}", len(PRIMITIVES), PRIMITIVES)
                              for kind in CELLS for j, i in EDGES)

    # ---- the discrete space ----------------------------------------------------------------

    def decisions(self) -> Sequence[Decision]:
        return self._decisions

    def decode(self, choices: Sequence[int]) -> DARTSGenotype:
        c = self.check_choices(choices)
        cells = []
        for k in range(len(CELLS)):
            nodes = []
            for j in range(N_NODES):
                pair, low, high = c[3 * (N_NODES * k + j):3 * (N_NODES * k + j) + 3]
                a, b = PAIRS[j][pair]
                nodes.append(((OPS[low], a), (OPS[high], b)))
            cells.append(nodes)
        return DARTSGenotype(*cells)  # type: ignore[arg-type]

    def encode(self, arch: Architecture) -> tuple[int, ...]:
        assert isinstance(arch, DARTSGenotype)
        return tuple(v for kind in CELLS for j, ((op_a, a), (op_b, b)) in enumerate(
            arch.cell(kind)) for v in (PAIRS[j].index((a, b)), OPS.index(op_a),
                                       OPS.index(op_b)))

    def parse(self, text: str) -> DARTSGenotype:
        return parse_darts(text)

    def graphs(self, arch: Architecture) -> list[Graph]:
        assert isinstance(arch, DARTSGenotype)
        graphs = []
        for kind in CELLS:
            names = ("c[k-2]", "c[k-1]") + tuple(str(j) for j in range(N_NODES)) + ("out",)
            edges = [(i, j + 2, op) for j, node in enumerate(arch.cell(kind)) for op, i in node]
            edges += [(j + 2, len(names) - 1, "") for j in range(N_NODES)]
            graphs.append(Graph(f"{kind} cell", names, tuple(edges)))
        return graphs

    # ---- the relaxation (DARTS' search) ----------------------------------------------------

    def relaxed_decisions(self) -> Sequence[Decision]:
        """Per cell (normal, then reduce), per edge (``EDGES``): a weight over the 8 ops."""
        return self._relaxed

    def relaxed_choices(self, arch: Architecture) -> tuple[int, ...]:
        """The genotype's op on each relaxed edge, ``none`` (0) on the edges it leaves out."""
        assert isinstance(arch, DARTSGenotype)
        out = []
        for kind in CELLS:
            chosen = {(j + 2, i): op for j, node in enumerate(arch.cell(kind)) for op, i in node}
            out += [PRIMITIVES.index(chosen.get(edge, "none")) for edge in EDGES]
        return tuple(out)

    def relaxed_edges(self) -> tuple[tuple[int, int], ...]:
        """(to node, from node) of each relaxed decision's edge (PC-DARTS normalises the
        weights of each node's incoming edges)."""
        return tuple(edge for _ in CELLS for edge in EDGES)

    def relaxed_cells(self) -> tuple[tuple[str, int], ...]:
        """(cell type, edges) per run of relaxed decisions: one alpha of (edges, 8) each."""
        return tuple((kind, len(EDGES)) for kind in CELLS)

    def derive(self, weights: Sequence[torch.Tensor]) -> DARTSGenotype:
        """The genotype of relaxed weights (28 vectors over the 8 ops, e.g. softmax(alpha)):
        per node the top-2 incoming edges by their strongest non-``none`` op, then that op."""
        if len(weights) != len(self._relaxed):
            raise ArchitectureError(f"darts: derive needs {len(self._relaxed)} weight "
                                    f"vectors, got {len(weights)}")
        n = len(EDGES)
        return DARTSGenotype(derive_cell(weights[:n]), derive_cell(weights[n:]))

    def derive_capped(self, weights: Sequence[torch.Tensor], max_skips: int) -> DARTSGenotype:
        """``derive`` with at most ``max_skips`` skip connections in the normal cell (P-DARTS'
        final rule: :func:`derive_cell_capped`); the reduction cell as ``derive``."""
        arch = self.derive(weights)
        return DARTSGenotype(derive_cell_capped(weights[:len(EDGES)], max_skips), arch.reduce)

    # ---- networks --------------------------------------------------------------------------

    def build(self, arch: Architecture, channels: int = 36, cells: int = 20,
              num_classes: int = 10, in_channels: int = 3, auxiliary: bool = False,
              dropout: float = 0.0, network: str = "official", **_: Any) -> nn.Module:
        """The evaluation network (the paper's CIFAR-10 one: 36 channels, 20 cells, with an
        auxiliary head trained at weight 0.4 and drop path 0.2, both the training's options).

        ``network="shared"``: the search network's sub-network on its own (pools followed by
        BatchNorm), which the supernet computes for ``arch`` weight for weight."""
        from archsearch.spaces.darts_network import DARTSNetwork

        assert isinstance(arch, DARTSGenotype)
        if network not in ("official", "shared"):
            raise ArchitectureError(f"network must be 'official' or 'shared', not {network!r}")
        return DARTSNetwork(arch, channels, cells, num_classes, in_channels, auxiliary,
                            dropout, shared=network == "shared")

    def supernet(self, channels: int = 16, cells: int = 8, num_classes: int = 10,
                 in_channels: int = 3, bn_affine: bool = False, bn_track: bool = False,
                 partial_channels: int = 1, edge_ops: list[list[int]] | None = None,
                 **_: Any) -> nn.Module:
        """The search network (DARTS': 16 channels, 8 cells); its forward takes a genotype or
        a relaxed path (a weight vector over the 8 ops per edge). ``partial_channels=K``:
        PC-DARTS' edges, 1/K of the channels through the ops (K = 1: DARTS'). ``edge_ops``:
        per relaxed edge the op indices it holds (P-DARTS' pruned stages; None: all 8)."""
        from archsearch.spaces.darts_supernet import DARTSSupernet

        return DARTSSupernet(channels, cells, num_classes, in_channels,
                             {"affine": bn_affine, "track_running_stats": bn_track},
                             partial_channels=partial_channels, edge_ops=edge_ops)


SPACE = DARTSSpace()  # the decisions the supernet's paths are read against
