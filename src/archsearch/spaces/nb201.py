"""NAS-Bench-201 (Dong & Yang, ICLR 2020): one cell of 4 nodes, an op on each of its 6 edges.

Canonical string, as the benchmark writes it (node j lists its inputs i < j)::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

The network (``build``): 3x3 conv stem (C channels) + BN, three stages of N cells at C, 2C, 4C
channels joined by residual reduction blocks, BN-ReLU, global average pool, linear classifier.
With C=16, N=5 and 10 classes this is the benchmark's network; the parameter count equals the
published one for every cell (checked in the tests against NASLib's table).

The supernet's ``partial_channels=K`` (PC-DARTS, :mod:`archsearch.nn.partial`) builds each
edge's ops at C/K channels: they see the first C/K channels of the edge's input, the rest
bypass and are shuffled back in (K = 1, the default: the plain supernet). A relaxed path's
``edge_weights`` multiply each edge's output in its node's sum. A cell runs as its one-hot
path: with K > 1 a ``none`` edge still passes its bypassed channels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    Pool,
    ReLUConvBN,
    ResNetBasicBlock,
    Zero,
    count_params_m,
    run_deferred,
    run_scaled,
    starts_with_relu,
)
from archsearch.nn.partial import check_partial, partial_edge
from archsearch.nn.skip_pool import SkipPoolTerms
from archsearch.nn.terms import Terms
from archsearch.registry import SPACES
from archsearch.spaces.base import Architecture, Graph, SearchSpace
from archsearch.types import Decision

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (to_node, from_node) for each edge, in the order of the canonical string
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
N_NODES = 4
POOL = OPS.index("avg_pool_3x3")


@dataclass(frozen=True)
class NB201Cell(Architecture):
    """The op on each of the 6 edges, in ``EDGES`` order."""

    ops: tuple[str, ...]
    space = "nb201"

    def __post_init__(self) -> None:
        if len(self.ops) != len(EDGES):
            raise ArchitectureError(f"an NB201 cell has {len(EDGES)} edges, got {len(self.ops)}")
        for (j, i), op in zip(EDGES, self.ops):
            if op not in OPS:
                raise ArchitectureError(
                    f"edge {i}->{j}: unknown op {op!r}; valid ops: {', '.join(OPS)}"
                )

    def to_str(self) -> str:
        nodes = []
        for j in range(1, N_NODES):
            nodes.append(
                "|" + "|".join(f"{op}~{i}" for (t, i), op in zip(EDGES, self.ops) if t == j) + "|"
            )
        return "+".join(nodes)

    def edge_op(self, to_node: int, from_node: int) -> str:
        return self.ops[EDGES.index((to_node, from_node))]


def parse_nb201(text: str) -> NB201Cell:
    text = text.strip()
    nodes = text.split("+")
    if len(nodes) != N_NODES - 1:
        raise ArchitectureError(
            f"NB201 string {text!r}: expected {N_NODES - 1} nodes separated by '+', "
            f"found {len(nodes)}; the form is |op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
        )
    ops: list[str] = []
    for j, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
            raise ArchitectureError(
                f"NB201 string, node {j} ({node!r}): must start and end with '|'"
            )
        tokens = node[1:-1].split("|")
        if len(tokens) != j:
            raise ArchitectureError(
                f"NB201 string, node {j} ({node!r}): expected {j} inputs, found {len(tokens)}"
            )
        for i, token in enumerate(tokens):
            op, sep, src = token.partition("~")
            if not sep or src != str(i):
                raise ArchitectureError(
                    f"NB201 string, node {j}, input {i} ({token!r}): expected 'op~{i}'"
                )
            if op not in OPS:
                raise ArchitectureError(
                    f"NB201 string, node {j}, input {i}: unknown op {op!r}; "
                    f"valid ops: {', '.join(OPS)}"
                )
            ops.append(op)
    return NB201Cell(tuple(ops))


def iso_key(cell: NB201Cell) -> str:
    """NATS-Bench's isomorphism key: 6,466 classes over the 15,625 cells.

    A node is written as the sorted ``+``-join of one term per incoming edge: ``#`` for ``none``
    (or for any op reading node 1 when node 1 is ``#``), the input's own text for
    ``skip_connect``, and ``(input)@op`` otherwise. The output node's text is the key. This
    reproduces the benchmark's ``unique_str`` partition exactly (checked in the tests); it is
    syntactic, so a few cells that compute the same function stay apart (see ``functional_key``).
    """
    text = {0: "0"}
    for j in range(1, N_NODES):
        terms = []
        for i in range(j):
            op, source = cell.edge_op(j, i), text[i]
            if op == "none" or source == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(source)
            else:
                terms.append(f"({source})@{op}")
        text[j] = "+".join(sorted(terms))
    return text[N_NODES - 1]


def functional_key(cell: NB201Cell) -> str:
    """A coarser key: equal for cells that compute the same function (4,930 classes).

    Each node's value is a sorted multiset of terms: ``none`` adds nothing, ``skip_connect``
    adds its input's terms (sums flatten), any other op adds ``op(input)``, and an op applied to
    a zero input is zero.
    """
    node_terms: list[tuple[str, ...]] = [("x",)]
    for j in range(1, N_NODES):
        terms: list[str] = []
        for i in range(j):
            op, source = cell.edge_op(j, i), node_terms[i]
            if op == "none" or not source:
                continue
            if op == "skip_connect":
                terms.extend(source)
            else:
                terms.append(f"{op}({'+'.join(source)})")
        node_terms.append(tuple(sorted(terms)))
    return "+".join(node_terms[-1]) or "zero"


class NB201Net(nn.Module):
    """Stem -> [N cells, reduce] x 2 -> N cells -> BN-ReLU -> pool -> linear.

    ``cell=None`` makes the supernet: every cell position holds the weights of both
    convolutions on each of its 6 edges, and ``forward(x, path)`` runs a cell's sub-network
    or a relaxed path (a weight vector over the 5 ops of each edge: DARTS' mixed op).
    ``bn`` (supernet only) sets BatchNorm's ``affine`` and ``track_running_stats`` (default
    neither: every batch normalised with its own statistics).
    """

    def __init__(
        self, cell: NB201Cell | None, channels: int = 16, cells_per_stage: int = 5,
        num_classes: int = 10, in_channels: int = 3, bn: dict[str, bool] | None = None,
        partial_channels: int = 1,
    ) -> None:
        super().__init__()
        check_partial(channels, partial_channels)
        self.cell, self.partial_channels = cell, partial_channels
        bn = ({"affine": True, "track_running_stats": True} if cell is not None
              else {"affine": False, "track_running_stats": False, **(bn or {})})
        c = channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c, **bn)
        )
        layers: list[nn.Module] = []
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(c, 2 * c, stride=2, **bn))
                c *= 2
            layers.extend(NB201CellModule(cell, c, bn, partial_channels)
                          for _ in range(cells_per_stage))
        self.cells = nn.ModuleList(layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c, **bn), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor, path: Any = None) -> torch.Tensor:
        path = path if path is not None else self.cell
        assert path is not None, "the supernet needs a cell (or a relaxed path) to run"
        sels = selectors(SPACE, path)  # one per edge: an op index, or weights over the ops
        weights = edge_weights(SPACE, path)  # per edge its weight in its node, or None
        x = self.stem(x)  # (B, C, H, W)
        for layer in self.cells:
            x = layer(x, sels, weights) if isinstance(layer, NB201CellModule) else layer(x)
        x = self.head(x).mean(dim=(2, 3))  # (B, 4C)
        return self.classifier(x)  # (B, num_classes)

    def option_params_m(self) -> list[list[float]]:
        """Supernet: per edge, per op, the parameters (millions) that op holds in all the cells
        (the cost of a relaxed path's options: SNAS' resource penalty)."""
        cells = [m for m in self.cells if isinstance(m, NB201CellModule)]
        return [[sum(count_params_m(m.ops[e][op]) for m in cells) for op in OPS]
                for e in range(len(EDGES))]


def make_op(op: str, channels: int, bn: dict[str, bool] | None = None) -> nn.Module:
    bn = bn or {}
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, **bn)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, **bn)
    if op == "avg_pool_3x3":
        return Pool("avg")
    raise ValueError(op)


class NB201CellModule(nn.Module):
    """Node j = sum over i < j of op_ij(node i); the cell's output is node 3.

    With a cell: its 6 ops. Without (supernet): every op of every edge, chosen at run time,
    built at C/``partial`` channels (see the module docstring).
    """

    def __init__(self, cell: NB201Cell | None, channels: int,
                 bn: dict[str, bool] | None = None, partial: int = 1) -> None:
        super().__init__()
        self.fixed = cell is not None
        self.partial = 1 if self.fixed else partial
        self.ops = nn.ModuleList(
            nn.ModuleDict({op: make_op(op, channels // self.partial, bn) for op in
                           ((cell.ops[e],) if cell is not None else OPS)})
            for e in range(len(EDGES))
        )

    def forward(self, x: torch.Tensor, sels: list[Selector],
                weights: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        weights = weights or [None] * len(EDGES)
        nodes = [x]
        activated = [relu_once(x)]  # node i's ReLU, computed once when first asked for
        for j in range(1, N_NODES):
            terms = Terms()  # the node's sum over the relaxed edges' ops, taken in one pass
            linear = SkipPoolTerms()  # its skips and its one average pooling, in one pass
            rest = None  # the edges that run as themselves (a choice, a sample, partial)
            for e, (t, i) in enumerate(EDGES):
                if t != j:
                    continue
                if self.relaxed_on_whole_channels(sels[e]):
                    self.add_terms(e, nodes[i], sels[e], weights[e], activated[i], terms,
                                   linear)
                else:
                    rest = add_maps(rest, self.edge(e, nodes[i], sels[e], activated[i],
                                                    weights[e]))
            skips_and_pool = linear.sum()
            if skips_and_pool is not None:
                terms.add(skips_and_pool)
            total = add_maps(terms.sum(), rest)
            nodes.append(node_sum(total, lambda: torch.zeros_like(x)))
            activated.append(relu_once(nodes[-1]))
        return nodes[-1]

    def relaxed_on_whole_channels(self, sel: Selector) -> bool:
        """Whether an edge's ops join its node's sum one by one: weights over several ops
        (not a choice, a straight-through sample or one active op: those run their own op's
        module) on whole channels (not PC-DARTS' partial edges)."""
        return (not self.fixed and self.partial == 1 and isinstance(sel, tuple)
                and len(sel[1]) > 1)

    def add_terms(self, e: int, x: torch.Tensor, sel: Selector, edge_weight: torch.Tensor | None,
                  activated: Callable[[], torch.Tensor], terms: Terms,
                  linear: SkipPoolTerms) -> None:
        """Edge e's ops on x into its node's sums, each op times its weight (times the edge's
        weight, if any): the convolutions with the weight folded into their BatchNorm, the
        skip and the average pooling as x and their weights into the node's skips and its
        one pooling (average pooling is linear: ``sum_i w_i pool(x_i) = pool(sum_i w_i x_i)``,
        half the poolings of a relaxed cell; :mod:`archsearch.nn.skip_pool`)."""
        w, active = sel  # type: ignore[misc]
        for k in active:
            scale = w[k] if edge_weight is None else w[k] * edge_weight
            if OPS[k] == "skip_connect":
                linear.add(x, skip=scale)
            elif k == POOL:
                linear.add(x, pool=scale)
            elif OPS[k] != "none":
                terms.add(self._op(e, k, x, activated, scale, defer=True))

    def edge(self, e: int, x: torch.Tensor, sel: Selector,
             activated: Callable[[], torch.Tensor] | None = None,
             weight: torch.Tensor | None = None) -> torch.Tensor | None:
        """Edge e on x: its chosen op or its ops' weighted sum (partial: on C/K channels),
        times ``weight`` (its weight in its node's sum; None: 1). ``activated()``: relu(x),
        shared by the node's ReLU-first ops (not when partial)."""
        if self.partial == 1:
            return weigh(mix_scaled(sel, lambda k, w: self._op(e, k, x, activated, w)), weight)
        return partial_edge(x, self.partial, 1, lambda x, weight: mix_weighted(
            sel, lambda k, w: self._op(e, k, x, scale=w), weight), weight)

    def _op(self, edge: int, k: int, x: torch.Tensor,
            activated: Callable[[], torch.Tensor] | None = None,
            scale: torch.Tensor | None = None, defer: bool = False) -> Any:
        """Op k of an edge on x, times ``scale`` (its mixing weight; None: 1); None for
        ``none`` (it adds zeros: skip the work). ``defer``: a last BatchNorm is left to the
        node's sum (:func:`archsearch.nn.ops.run_deferred`)."""
        if OPS[k] == "none":
            return None
        op = self.ops[edge][OPS[k]]
        relu = activated() if activated is not None and starts_with_relu(op) else None
        return (run_deferred if defer else run_scaled)(op, x, scale, relu)


@SPACES.register("nb201")
class NB201Space(SearchSpace):
    """6 edges x 5 ops = 15,625 cells (6,466 up to isomorphism)."""

    name = "nb201"
    # CPU-sized networks (the paper's are larger: see build / supernet)
    presets = {"search": {"channels": 16, "cells_per_stage": 1},
               "final": {"channels": 16, "cells_per_stage": 1}}

    def __init__(self) -> None:
        self._decisions = tuple(
            Decision(f"edge{i}->{j}", len(OPS), OPS) for j, i in EDGES
        )

    def decisions(self) -> Sequence[Decision]:
        return self._decisions

    def decode(self, choices: Sequence[int]) -> NB201Cell:
        return NB201Cell(tuple(OPS[c] for c in self.check_choices(choices)))

    def encode(self, arch: Architecture) -> tuple[int, ...]:
        assert isinstance(arch, NB201Cell)
        return tuple(OPS.index(op) for op in arch.ops)

    def parse(self, text: str) -> NB201Cell:
        return parse_nb201(text)

    def iso_key(self, arch: Architecture) -> str:
        assert isinstance(arch, NB201Cell)
        return iso_key(arch)

    def graphs(self, arch: Architecture) -> list[Graph]:
        assert isinstance(arch, NB201Cell)
        edges = tuple((i, j, op) for (j, i), op in zip(EDGES, arch.ops) if op != "none")
        return [Graph("NAS-Bench-201 cell", ("in", "1", "2", "out"), edges)]

    def relaxed_edges(self) -> tuple[tuple[int, int], ...]:
        """(to node, from node) of each decision's edge (PC-DARTS normalises the weights of
        each node's incoming edges)."""
        return EDGES

    def derive(self, weights: Sequence[torch.Tensor], include_none: bool = True) -> NB201Cell:
        """The cell of relaxed weights (one vector over the 5 ops per edge, e.g. softmax(alpha)):
        per edge the heaviest op, ``none`` included (AutoDL's NB201 DARTS/GDAS ``genotype()``;
        ties: the earlier op). ``include_none=False``: the heaviest op but ``none`` (the DARTS
        paper's rule for its own space, where ``none`` never enters a genotype), so that no edge
        is cut: a lever against the collapse to a cell without a path from input to output."""
        if len(weights) != len(EDGES):
            raise ArchitectureError(f"nb201: derive needs {len(EDGES)} weight vectors, got "
                                    f"{len(weights)}")
        rows = torch.stack([w.detach().float().cpu() for w in weights])  # (6, 5)
        if not include_none:
            rows[:, OPS.index("none")] = float("-inf")
        return NB201Cell(tuple(OPS[int(i)] for i in torch.argmax(rows, dim=-1)))

    def derive_capped(self, weights: Sequence[torch.Tensor], max_skips: int,
                      include_none: bool = True) -> NB201Cell:
        """``derive`` with at most ``max_skips`` skip connections (the skip cap against the
        collapse to a cell of skips, P-DARTS' rule as the darts space applies it): while more
        edges take ``skip_connect``, the one whose skip weighs least (ties: the first edge) takes
        its next best op (``none`` included unless ``include_none=False``). A cell with fewer is
        unchanged."""
        cell = self.derive(weights, include_none)
        rows = torch.stack([w.detach().float().cpu() for w in weights]).clone()  # (6, 5)
        skip = OPS.index("skip_connect")
        skips = [e for e, op in enumerate(cell.ops) if op == "skip_connect"]
        for edge in sorted(skips, key=lambda e: (float(rows[e, skip]), e))[:max(
                len(skips) - max_skips, 0)]:
            rows[edge, skip] = float("-inf")
        return self.derive(list(rows), include_none)

    def build(
        self, arch: Architecture, channels: int = 16, cells_per_stage: int = 5,
        num_classes: int = 10, in_channels: int = 3, **_: Any,
    ) -> NB201Net:
        assert isinstance(arch, NB201Cell)
        return NB201Net(arch, channels, cells_per_stage, num_classes, in_channels)

    def supernet(
        self, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10,
        in_channels: int = 3, bn_affine: bool = False, bn_track: bool = False,
        partial_channels: int = 1, **_: Any,
    ) -> NB201Net:
        """Shared weights for all 15,625 cells (the benchmark's network by default);
        ``partial_channels=K``: PC-DARTS' edges (K = 1: the plain supernet)."""
        return NB201Net(None, channels, cells_per_stage, num_classes, in_channels,
                        {"affine": bn_affine, "track_running_stats": bn_track},
                        partial_channels)


SPACE = NB201Space()  # the decisions the supernet's paths are read against
