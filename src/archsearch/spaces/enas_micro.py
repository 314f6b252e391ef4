"""ENAS micro space (Pham et al., 2018): a normal and a reduction cell, each a DAG of B nodes.

Nodes 0 and 1 are the cell's inputs (the two previous cells' outputs). Each of the B nodes
2..B+1 picks two inputs among the earlier nodes and an op for each from
``sep_conv_3x3, sep_conv_5x5, avg_pool_3x3, max_pool_3x3, identity`` (ENAS's order), and sums
the two results. The *loose ends* (intermediate nodes no other node reads) are concatenated and
a ReLU-1x1 conv-BN maps them back to C channels, as in ENAS's code (so every cell outputs C
channels and a supernet slices that conv's weights by which nodes are loose). ``output="all"``
(``supernet(output="all")``, ``build(arch, output="all")``) concatenates every intermediate node
instead, read or not: what NNI 3.0's one-shot supernet cells do whatever their ``merge_op``
(its path-sampling cell treats ``loose_end`` as ``all``). NNI's cell then hands the 5C-channel
concatenation itself to the next cells' 1x1 preprocessing; here the 1x1 conv-BN still maps it
back to C channels, so even with ``"all"`` the two networks differ in that conv.

Reduction cells run the same kind of DAG with stride 2 on ops that read the cell's inputs
(the DARTS/NNI convention; ENAS's code instead reduces the inputs first and runs the cell at
stride 1). Only intermediate nodes count as loose ends (ENAS's code also counts unused inputs).

Canonical string (nodes in order; ``op~input`` for each of a node's two inputs)::

    normal:sep_conv_3x3~1,identity~0|avg_pool_3x3~0,sep_conv_5x5~2|...;reduce:...

Encoding: per cell (normal, then reduction), per node: ``input_a, op_a, input_b, op_b``
(ENAS's arc order). The network: a 3x3 conv stem to 3C channels, then N normal cells, a
reduction cell (channels doubled), N normal cells, a reduction cell, N normal cells, global
pooling and a linear classifier; an auxiliary head after the second reduction is optional.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archsearch.errors import ArchitectureError
from archsearch.nn.cell_ops import AuxiliaryHead, drop_path, make_cell_op
from archsearch.nn.mixed import Relaxed, Selector, mix, selectors
from archsearch.nn.ops import FactorizedReduce, ReLUConvBN, pointwise
from archsearch.registry import SPACES
from archsearch.spaces.base import Architecture, Graph, SearchSpace
from archsearch.types import Decision

OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity")
CELLS = ("normal", "reduce")

Node = tuple[int, str, int, str]  # (input_a, op_a, input_b, op_b)


def _check_cell(kind: str, nodes: Sequence[Node]) -> None:
    for b, (in_a, op_a, in_b, op_b) in enumerate(nodes):
        for which, (src, op) in enumerate(((in_a, op_a), (in_b, op_b))):
            where = f"{kind} cell, node {b + 2}, input {'ab'[which]}"
            if not 0 <= src < b + 2:
                raise ArchitectureError(f"{where}: reads node {src}, must be in 0..{b + 1}")
            if op not in OPS:
                raise ArchitectureError(f"{where}: unknown op {op!r}; valid ops: {', '.join(OPS)}")


def loose_ends(nodes: Sequence[Node]) -> tuple[int, ...]:
    """Intermediate nodes (2..B+1) that no node reads, in order."""
    read = {n[0] for n in nodes} | {n[2] for n in nodes}
    return tuple(i for i in range(2, len(nodes) + 2) if i not in read)


@dataclass(frozen=True)
class MicroCell(Architecture):
    normal: tuple[Node, ...]
    reduce: tuple[Node, ...]
    space = "enas-micro"

    def __post_init__(self) -> None:
        if len(self.normal) != len(self.reduce) or not self.normal:
            raise ArchitectureError("normal and reduction cells need the same number (>0) of nodes")
        _check_cell("normal", self.normal)
        _check_cell("reduce", self.reduce)

    def cell(self, kind: str) -> tuple[Node, ...]:
        return self.normal if kind == "normal" else self.reduce

    def to_str(self) -> str:
        return ";".join(
            f"{kind}:" + "|".join(f"{oa}~{a},{ob}~{b}" for a, oa, b, ob in self.cell(kind))
            for kind in CELLS
        )


def parse_micro(text: str) -> MicroCell:
    parts = text.strip().split(";")
    if len(parts) != 2:
        raise ArchitectureError(
            f"ENAS micro string: expected 'normal:...;reduce:...', found {len(parts)} part(s)"
        )
    cells = []
    for kind, part in zip(CELLS, parts):
        head, sep, body = part.partition(":")
        if head.strip() != kind or not sep:
            raise ArchitectureError(f"ENAS micro string: part {kind!r} must start with '{kind}:'")
        nodes = []
        for b, node in enumerate(body.split("|")):
            pair = node.split(",")
            if len(pair) != 2:
                raise ArchitectureError(
                    f"{kind} cell, node {b + 2} ({node!r}): expected 'op~input,op~input'"
                )
            entry = []
            for token in pair:
                op, tilde, src = token.strip().partition("~")
                if not tilde or not src.isdigit():
                    raise ArchitectureError(
                        f"{kind} cell, node {b + 2} ({token!r}): expected 'op~input'"
                    )
                entry += [int(src), op]
            nodes.append(tuple(entry))
        cells.append(tuple(nodes))
    return MicroCell(cells[0], cells[1])  # type: ignore[arg-type]


OUTPUTS = ("loose", "all")  # which intermediate nodes a cell's output concatenates


def output_nodes(nodes: Sequence[Node], output: str) -> tuple[int, ...]:
    """The intermediate nodes a cell's ``Combine`` reads: its loose ends (``"loose"``, ENAS) or
    every intermediate node (``"all"``, NNI 3.0's one-shot cells)."""
    if output == "loose":
        return loose_ends(nodes)
    if output == "all":
        return tuple(range(2, len(nodes) + 2))
    raise ValueError(f"unknown cell output {output!r}; valid: {', '.join(OUTPUTS)}")


class Combine(nn.Module):
    """ReLU -> 1x1 conv over the concatenated output nodes -> BN, back to C channels.

    ``loose`` fixed: the conv has exactly those inputs. ``loose=None`` (a supernet): one weight
    column block per intermediate node, sliced at run time by which nodes are loose.
    ``every=True`` (``output="all"``): the inputs are always every intermediate node in order,
    so the conv reads its whole weight and nothing is sliced.
    """

    def __init__(self, c: int, n_nodes: int, loose: tuple[int, ...] | None, bn: dict[str, Any],
                 every: bool = False):
        super().__init__()
        self.c, self.fixed, self.every = c, loose is not None, every
        n_in = len(loose) if loose is not None else n_nodes
        self.weight = nn.Parameter(torch.empty(c, n_in * c, 1, 1))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.Conv2d's default
        self.bn = nn.BatchNorm2d(c, **bn)

    def forward(self, activated: list[torch.Tensor], loose: tuple[int, ...]) -> torch.Tensor:
        # relu(cat(loose ends)) = cat(relu(loose end)): the caller passes the nodes' ReLUs
        x = torch.cat(activated, dim=1)  # (B, |loose|*C, H, W)
        w = self.weight
        if not self.fixed and not self.every:
            cols = torch.cat([torch.arange((i - 2) * self.c, (i - 1) * self.c, device=w.device)
                              for i in loose])
            w = w[:, cols]
        return self.bn(pointwise(x, w))


class MicroCellModule(nn.Module):
    """One cell. ``nodes`` given: a stand-alone cell with just its ops; ``None``: a shared cell
    holding every op of every (node, slot), run with the nodes passed to ``forward``.
    ``output``: which intermediate nodes the output concatenates (``OUTPUTS``)."""

    def __init__(self, nodes: tuple[Node, ...] | None, n_nodes: int, c_pp: int, c_p: int,
                 c: int, reduction: bool, reduction_prev: bool, bn: dict[str, Any],
                 output: str = "loose") -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"unknown cell output {output!r}; valid: {', '.join(OUTPUTS)}")
        self.nodes, self.reduction, self.output = nodes, reduction, output
        read = {0, 1} if nodes is None else {n[0] for n in nodes} | {n[2] for n in nodes}
        # a stand-alone cell holds only what it runs: no preprocessing of an input no node
        # reads, no factorized reduction for an identity that never runs at stride 2
        self.pre0 = None if 0 not in read else (
            FactorizedReduce(c_pp, c, **bn) if reduction_prev else ReLUConvBN(c_pp, c, 1, **bn))
        self.pre1 = ReLUConvBN(c_p, c, 1, **bn) if 1 in read else None
        self.ops = nn.ModuleDict()
        for b in range(n_nodes):
            for slot in range(2):
                src = None if nodes is None else nodes[b][2 * slot]
                chosen = OPS if nodes is None else (nodes[b][2 * slot + 1],)
                reducible = reduction and (src is None or src < 2)
                for op in chosen:
                    self.ops[f"{b}_{slot}_{op}"] = make_cell_op(op, c, bn, reducible)
        self.combine = Combine(c, n_nodes, None if nodes is None else output_nodes(nodes, output),
                               bn, every=output == "all")

    def forward(self, a0: torch.Tensor, a1: torch.Tensor, nodes: tuple[Node, ...] | None = None,
                drop_prob: float = 0.0) -> torch.Tensor:
        """``a0``, ``a1``: relu of the two previous cells' outputs (every preprocessing op
        starts with a ReLU, so the network computes each cell output's ReLU once)."""
        nodes = nodes if nodes is not None else self.nodes
        assert nodes is not None, "a shared cell needs the nodes to run"
        states = [self._pre(self.pre0, a0), self._pre(self.pre1, a1)]  # (B, C, H, W) each
        relus: dict[int, torch.Tensor] = {}  # each node's ReLU, computed once for all readers

        def activated(i: int) -> torch.Tensor:
            if i not in relus:
                relus[i] = torch.relu(states[i])
            return relus[i]

        for b, node in enumerate(nodes):
            outputs = []
            for slot in range(2):
                src, op = node[2 * slot], node[2 * slot + 1]
                stride = 2 if self.reduction and src < 2 else 1
                wants_relu = op.startswith("sep_conv") or (op == "identity" and stride == 2)
                y = self.ops[f"{b}_{slot}_{op}"](states[src], stride,
                                                 activated(src) if wants_relu else None)
                if self.training and drop_prob > 0 and not (op == "identity" and stride == 1):
                    y = drop_path(y, drop_prob)
                outputs.append(y)
            states.append(outputs[0] + outputs[1])  # (B, C, H', W'), one add
        loose = output_nodes(nodes, self.output)
        return self.combine([activated(i) for i in loose], loose)  # (B, C, H', W')

    def forward_relaxed(self, a0: torch.Tensor, a1: torch.Tensor,
                        sels: list[Selector]) -> torch.Tensor:
        """A relaxed path (``sels``: this cell's 4 selectors per node, ENAS's arc order): each
        slot's output is the weighted sum over its inputs and ops; node i enters the output
        with the probability that no later slot reads it (1 for a loose end, 0 otherwise when
        the weights are one-hot), or always with ``output="all"``. Drop path is not applied (a
        search-time supernet)."""
        states = [self._pre(self.pre0, a0), self._pre(self.pre1, a1)]
        relus: dict[int, torch.Tensor] = {}

        def activated(i: int) -> torch.Tensor:
            if i not in relus:
                relus[i] = torch.relu(states[i])
            return relus[i]

        def slot_output(b: int, slot: int, src: int, k: int) -> torch.Tensor:
            op, stride = OPS[k], 2 if self.reduction and src < 2 else 1
            wants_relu = op.startswith("sep_conv") or (op == "identity" and stride == 2)
            return self.ops[f"{b}_{slot}_{op}"](states[src], stride,
                                                 activated(src) if wants_relu else None)

        for b in range(len(sels) // 4):
            outputs = [mix(sels[4 * b + 2 * slot], lambda src, b=b, slot=slot: mix(
                sels[4 * b + 2 * slot + 1], lambda k, src=src: slot_output(b, slot, src, k)))
                for slot in range(2)]
            states.append(outputs[0] + outputs[1])  # type: ignore[operator]
        n = len(sels) // 4
        loose = tuple(range(2, n + 2))
        if self.output == "all":
            kept = [activated(i) for i in loose]
        else:
            kept = [activated(i) * self._unread(sels, i) for i in loose]
        return self.combine(kept, loose)  # (B, C, H', W')

    @staticmethod
    def _unread(sels: list[Selector], i: int) -> torch.Tensor | float:
        """The weight of "no later slot reads node i" (product over the slots that could)."""
        weight: torch.Tensor | float = 1.0
        for b in range(max(0, i - 1), len(sels) // 4):  # nodes b + 2 > i may read node i
            for slot in range(2):
                sel = sels[4 * b + 2 * slot]
                read = float(sel == i) if isinstance(sel, int) else sel[0][i]
                weight = weight * (1 - read)
        return weight

    @staticmethod
    def _pre(pre: nn.Module | None, activated: torch.Tensor) -> torch.Tensor:
        if pre is None:
            return activated  # unread input: any tensor will do
        if isinstance(pre, FactorizedReduce):
            return pre(activated, activated)
        return pre[2](pre[1](activated))  # ReLUConvBN without its ReLU


def live_cells(arch: MicroCell, kinds: list[str]) -> list[bool]:
    """Which cells' outputs reach the classifier: the last cell does; a cell is live when a
    live next cell reads its input 1 or the live cell after that reads its input 0."""
    reads = {k: {n[0] for n in arch.cell(k)} | {n[2] for n in arch.cell(k)} for k in CELLS}
    live = [False] * len(kinds)
    live[-1] = True
    for i in range(len(kinds) - 1, -1, -1):
        if live[i]:
            if 1 in reads[kinds[i]] and i >= 1:
                live[i - 1] = True
            if 0 in reads[kinds[i]] and i >= 2:
                live[i - 2] = True
    return live


class MicroNet(nn.Module):
    """Stem -> [N normal, reduce] x 2 -> N normal -> ReLU -> pool -> linear.

    ``arch=None`` makes the supernet: shared weights for every op, BatchNorm without affine
    parameters or running statistics, and ``forward(x, arch)`` runs the sub-network of ``arch``.
    ``output``: what each cell's output concatenates, its loose ends (``"loose"``, ENAS) or
    every intermediate node (``"all"``, NNI 3.0's one-shot cells).
    """

    def __init__(self, arch: MicroCell | None, n_nodes: int = 5, channels: int = 20,
                 cells_per_stage: int = 2, num_classes: int = 10, in_channels: int = 3,
                 auxiliary: bool = False, dropout: float = 0.0,
                 bn: dict[str, bool] | None = None, output: str = "loose") -> None:
        super().__init__()
        self.arch, self.n_nodes, self.output = arch, n_nodes, output
        bn = ({"affine": True, "track_running_stats": True} if arch is not None
              else {"affine": False, "track_running_stats": False, **(bn or {})})
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 3 * c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(3 * c, **bn))
        c_pp, c_p = 3 * c, 3 * c
        self.cells = nn.ModuleList()
        self.kinds: list[str] = []
        self.aux_after = -1
        reduction_prev = False
        for stage in range(3):
            kinds = (["reduce"] if stage > 0 else []) + ["normal"] * cells_per_stage
            for kind in kinds:
                reduction = kind == "reduce"
                c = c * 2 if reduction else c
                nodes = None if arch is None else arch.cell(kind)
                self.cells.append(MicroCellModule(nodes, n_nodes, c_pp, c_p, c, reduction,
                                                  reduction_prev, bn, output))
                self.kinds.append(kind)
                c_pp, c_p, reduction_prev = c_p, c, reduction
            if stage == 1:
                self.aux_after = len(self.cells) - 1
        self.live = live_cells(arch, self.kinds) if arch is not None else [True] * len(self.kinds)
        for i, alive in enumerate(self.live):
            if not alive:  # its output is never read: a stand-alone network drops it
                self.cells[i] = nn.Identity()
        self.aux = AuxiliaryHead(c_p // 2, num_classes) if auxiliary else None
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_p, num_classes)
        self.drop_path_prob = 0.0  # set by the training loop (scheduled)

    def forward(self, x: torch.Tensor, arch: Any = None):  # type: ignore[override]
        arch = arch if arch is not None else self.arch
        assert arch is not None, "the supernet needs an architecture to run"
        if isinstance(arch, Relaxed):
            return self.forward_relaxed(x, arch)
        a0 = a1 = torch.relu(self.stem(x))  # ReLU'd cell inputs, (B, 3C, H, W)
        aux_logits = None
        for i, (cell, kind) in enumerate(zip(self.cells, self.kinds)):
            if not self.live[i]:
                a0 = a1  # nothing reads this cell's output; a1 stands in for it unused
                continue
            out = cell(a0, a1, arch.cell(kind), self.drop_path_prob)  # (B, C, H', W')
            a0, a1 = a1, torch.relu(out)
            if i == self.aux_after and self.aux is not None and self.training:
                aux_logits = self.aux(out)
        out = self.classifier(self.dropout(a1.mean(dim=(2, 3))))  # (B, classes)
        return (out, aux_logits) if aux_logits is not None else out

    def forward_relaxed(self, x: torch.Tensor, path: Relaxed) -> torch.Tensor:
        """The supernet on a relaxed path (a weight vector per decision)."""
        assert self.arch is None, "a stand-alone network runs its own architecture"
        sels = selectors(ENASMicroSpace(self.n_nodes), path)
        per_cell = 4 * self.n_nodes
        a0 = a1 = torch.relu(self.stem(x))
        for cell, kind in zip(self.cells, self.kinds):
            k = CELLS.index(kind)
            out = cell.forward_relaxed(a0, a1, sels[k * per_cell:(k + 1) * per_cell])
            a0, a1 = a1, torch.relu(out)
        return self.classifier(self.dropout(a1.mean(dim=(2, 3))))


@SPACES.register("enas-micro")
class ENASMicroSpace(SearchSpace):
    name = "enas-micro"
    # CPU-sized networks (the paper's are larger: see build / supernet)
    presets = {"search": {"channels": 16, "cells_per_stage": 1},
               "final": {"channels": 16, "cells_per_stage": 2}}
    ops = OPS

    def __init__(self, n_nodes: int = 5) -> None:
        self.n_nodes = n_nodes
        decisions = []
        for kind in CELLS:
            for b in range(n_nodes):
                for slot in "ab":
                    decisions.append(Decision(f"{kind}/node{b + 2}/input_{slot}", b + 2))
                    decisions.append(Decision(f"{kind}/node{b + 2}/op_{slot}", len(OPS), OPS))
        self._decisions = tuple(decisions)

    def decisions(self) -> Sequence[Decision]:
        return self._decisions

    def decode(self, choices: Sequence[int]) -> MicroCell:
        c = self.check_choices(choices)
        cells = []
        for k in range(2):
            base = 4 * self.n_nodes * k
            cells.append(tuple(
                (c[base + 4 * b], OPS[c[base + 4 * b + 1]], c[base + 4 * b + 2],
                 OPS[c[base + 4 * b + 3]]) for b in range(self.n_nodes)
            ))
        return MicroCell(cells[0], cells[1])

    def encode(self, arch: Architecture) -> tuple[int, ...]:
        assert isinstance(arch, MicroCell)
        return tuple(v for kind in CELLS for a, oa, b, ob in arch.cell(kind)
                     for v in (a, OPS.index(oa), b, OPS.index(ob)))

    def parse(self, text: str) -> MicroCell:
        arch = parse_micro(text)
        if len(arch.normal) != self.n_nodes:
            raise ArchitectureError(f"ENAS micro string has {len(arch.normal)} nodes per cell; "
                                    f"this space has {self.n_nodes}")
        return arch

    def graphs(self, arch: Architecture) -> list[Graph]:
        assert isinstance(arch, MicroCell)
        graphs = []
        for kind in CELLS:
            nodes = arch.cell(kind)
            names = ("c[k-2]", "c[k-1]") + tuple(str(i + 2) for i in range(len(nodes))) + ("out",)
            edges = [(a, b + 2, oa) for b, (a, oa, _, _) in enumerate(nodes)]
            edges += [(c, b + 2, oc) for b, (_, _, c, oc) in enumerate(nodes)]
            edges += [(i, len(names) - 1, "") for i in loose_ends(nodes)]
            graphs.append(Graph(f"{kind} cell", names, tuple(edges)))
        return graphs

    def iso_key(self, arch: Architecture) -> str:
        """The string with each node's two (op, input) pairs sorted (their sum commutes)."""
        assert isinstance(arch, MicroCell)
        cells = {k: tuple(tuple(x for pair in sorted([(a, oa), (b, ob)]) for x in pair)
                          for a, oa, b, ob in arch.cell(k)) for k in CELLS}
        return MicroCell(cells["normal"], cells["reduce"]).to_str()  # type: ignore[arg-type]

    def build(self, arch: Architecture, channels: int = 36, cells_per_stage: int = 5,
              num_classes: int = 10, in_channels: int = 3, auxiliary: bool = False,
              dropout: float = 0.0, output: str = "loose", network: str = "official",
              **_: Any) -> nn.Module:
        """The stand-alone network (ENAS's final CIFAR-10 network: 36 channels, 5 per stage).

        ``network="official"``: as ENAS's code builds a fixed architecture (cells output the
        concatenation of their unused nodes, calibrated by the next cells; its auxiliary
        head; see :mod:`archsearch.spaces.enas_micro_final`). ``"shared"``: the supernet's
        sub-network on its own (cells mapped back to C channels; ``output="all"``: each
        cell's output concatenates every intermediate node, as NNI's cells do)."""
        assert isinstance(arch, MicroCell)
        if network == "official":
            from archsearch.spaces.enas_micro_final import FinalMicroNet

            if output != "loose":
                raise ArchitectureError("output applies to network='shared' (the official "
                                        "network's cells output their unused nodes)")

            return FinalMicroNet(arch, channels, cells_per_stage, num_classes, in_channels,
                                 auxiliary, dropout)
        if network != "shared":
            raise ArchitectureError(f"network must be 'official' or 'shared', not {network!r}")
        return MicroNet(arch, self.n_nodes, channels, cells_per_stage, num_classes, in_channels,
                        auxiliary, dropout, output=output)

    def supernet(self, channels: int = 20, cells_per_stage: int = 2, num_classes: int = 10,
                 in_channels: int = 3, bn_affine: bool = False, bn_track: bool = False,
                 output: str = "loose", **_: Any) -> MicroNet:
        """Shared weights for every sub-network (ENAS's search: 20 channels, 2 per stage).

        ``output``: ``"loose"`` (the default, ENAS) concatenates each cell's loose ends;
        ``"all"`` every intermediate node, as NNI 3.0's one-shot ENAS supernet does."""
        return MicroNet(None, self.n_nodes, channels, cells_per_stage, num_classes, in_channels,
                        bn={"affine": bn_affine, "track_running_stats": bn_track}, output=output)
