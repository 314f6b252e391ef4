"""The NASNet cell space (Zoph et al., 2018): a normal and a reduction cell of B blocks each.

A cell reads the outputs of the two previous cells (hidden states 0 and 1). Block b picks two
hidden states among 0..b+1 (the cell inputs and the earlier blocks' outputs), an op for each
from the paper's 13, and how to combine them: ``add`` or ``concat`` (along channels). The
cell's output concatenates every block output that no later block reads. In the reduction
cell, ops reading a cell input have stride 2.

Canonical string (B = 5 blocks a cell; ``op~i`` applies op to hidden state i)::

    normal:add(sep_conv_3x3~1,identity~0),concat(...),...;reduce:add(...),...

Cells of fewer blocks (1 to B, the same number in both cells: PNAS grows cells one block at a
time) are architectures of the space too: ``parse`` and ``encode`` accept them (the one-hot
encoding leaves the missing blocks all zero); ``sample`` and ``decode`` give B blocks.

Encoding per block, in the controller's order: input 1, input 2, op 1, op 2, combine. The
network (``build``) stacks ``cells_per_stage`` normal cells per stage, three stages with a
reduction cell between them, channels doubled at each reduction; ScheduledDropPath drops each
non-identity op output of a sample with ``drop_path_prob`` (raised linearly over training by
the training loop); an auxiliary head at two thirds of the depth is optional.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archsearch.errors import ArchitectureError
from archsearch.nn.cell_ops import AuxiliaryHead, drop_path
from archsearch.nn.ops import (
    DilConv,
    FactorizedReduce,
    Pool,
    ReLUConvBN,
    SepConv,
    cat_channels,
)
from archsearch.registry import SPACES
from archsearch.spaces.base import Architecture, Graph, SearchSpace
from archsearch.types import Decision

OPS = ("identity", "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3", "avg_pool_3x3",
       "max_pool_3x3", "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3", "sep_conv_3x3",
       "sep_conv_5x5", "sep_conv_7x7")
COMBINE = ("add", "concat")
CELLS = ("normal", "reduce")


@dataclass(frozen=True)
class Block:
    in1: int
    op1: str
    in2: int
    op2: str
    combine: str

    def token(self) -> str:
        return f"{self.combine}({self.op1}~{self.in1},{self.op2}~{self.in2})"


@dataclass(frozen=True)
class NASNetArch(Architecture):
    normal: tuple[Block, ...]
    reduce: tuple[Block, ...]
    space = "nasnet"

    def __post_init__(self) -> None:
        if len(self.normal) != len(self.reduce) or not self.normal:
            raise ArchitectureError("NASNet cells need the same number (>= 1) of blocks")
        for name, cell in zip(CELLS, (self.normal, self.reduce)):
            for b, block in enumerate(cell):
                where = f"{name} cell, block {b} ({block.token()})"
                for i, op in ((block.in1, block.op1), (block.in2, block.op2)):
                    if op not in OPS:
                        raise ArchitectureError(f"{where}: unknown op {op!r}; valid ops: "
                                                f"{', '.join(OPS)}")
                    if not 0 <= i < b + 2:
                        raise ArchitectureError(f"{where}: input {i} must be in 0..{b + 1}")
                if block.combine not in COMBINE:
                    raise ArchitectureError(f"{where}: combine must be add or concat")

    def to_str(self) -> str:
        return ";".join(f"{name}:" + ",".join(b.token() for b in cell)
                        for name, cell in zip(CELLS, (self.normal, self.reduce)))


BLOCK = re.compile(r"(add|concat)\((\w+)~(\d+),(\w+)~(\d+)\)")


def parse_cell(name: str, text: str) -> tuple[Block, ...]:
    blocks, pos = [], 0
    while pos < len(text):
        m = BLOCK.match(text, pos)
        if m is None:
            raise ArchitectureError(f"NASNet string, {name} cell at {text[pos:pos + 30]!r}: "
                                    "expected add(op~i,op~j) or concat(op~i,op~j)")
        c, op1, in1, op2, in2 = m.groups()
        blocks.append(Block(int(in1), op1, int(in2), op2, c))
        pos = m.end() + (1 if text[m.end():m.end() + 1] == "," else 0)
    return tuple(blocks)


# ---- the network -----------------------------------------------------------------------------

class FactorizedConv(nn.Sequential):
    """ReLU -> 1xk conv -> kx1 conv -> BN (the stride split between the two)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, (1, k), (1, stride), (0, k // 2), bias=False),
            nn.Conv2d(c_out, c_out, (k, 1), (stride, 1), (k // 2, 0), bias=False),
            nn.BatchNorm2d(c_out),
        )


def make_op(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """Op ``name`` from c_in to c_out channels; pools and identity project with 1x1 if needed."""
    if name == "identity":
        if stride == 2:
            return FactorizedReduce(c_in, c_out)
        return nn.Identity() if c_in == c_out else ReLUConvBN(c_in, c_out, 1)
    if name.startswith("conv_1x"):
        return FactorizedConv(c_in, c_out, int(name[-1]), stride)
    if name == "dil_conv_3x3":
        return DilConv(c_in, c_out, 3, stride)
    if name.endswith(("pool_3x3", "pool_5x5", "pool_7x7")):
        pool = Pool(name[:3], stride, int(name[-1]))
        return pool if c_in == c_out else nn.Sequential(pool, ReLUConvBN(c_in, c_out, 1))
    if name.startswith("conv_"):
        return ReLUConvBN(c_in, c_out, int(name[-1]), stride)
    if name.startswith("sep_conv_"):
        return SepConv(c_in, c_out, int(name[-1]), stride)
    raise ValueError(f"unknown NASNet op {name!r}")


class Cell(nn.Module):
    def __init__(self, blocks: tuple[Block, ...], c_pp: int, c_p: int, c: int,
                 reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.blocks = blocks
        read = {i for b in blocks for i in (b.in1, b.in2)}
        # an input no block reads needs no preprocessing (it would hold weights never trained)
        self.pre0 = None if 0 not in read else (
            FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1))
        self.pre1 = ReLUConvBN(c_p, c, 1) if 1 in read else None
        widths = [c, c]  # channels of each hidden state
        self.ops = nn.ModuleList()
        for block in blocks:
            pair = nn.ModuleList(
                make_op(op, widths[i], c, 2 if reduction and i < 2 else 1)
                for i, op in ((block.in1, block.op1), (block.in2, block.op2)))
            self.ops.append(pair)
            widths.append(2 * c if block.combine == "concat" else c)
        self.ends = [2 + b for b in range(len(blocks)) if 2 + b not in read]
        self.c_out = sum(widths[i] for i in self.ends)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        # (B, C, H, W) each; an unread input stays as it is (nothing looks at it)
        states = [s if pre is None else pre(s) for pre, s in ((self.pre0, s0), (self.pre1, s1))]
        for block, pair in zip(self.blocks, self.ops):
            outs = []
            for (i, op), module in zip(((block.in1, block.op1), (block.in2, block.op2)), pair):
                y = module(states[i])
                if self.training and op != "identity":
                    y = drop_path(y, drop_prob)  # ScheduledDropPath
                outs.append(y)
            states.append(outs[0] + outs[1] if block.combine == "add" else cat_channels(outs))
        return cat_channels([states[i] for i in self.ends])  # (B, c_out, H', W')


class NASNetwork(nn.Module):
    def __init__(self, arch: NASNetArch, channels: int = 16, cells_per_stage: int = 2,
                 num_classes: int = 10, in_channels: int = 3, stem_multiplier: int = 3,
                 auxiliary: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.drop_path_prob = 0.0  # set by the training loop (ScheduledDropPath)
        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_stem))
        c_pp, c_p, c = c_stem, c_stem, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        n = 3 * cells_per_stage + 2
        self.aux_at = 2 * cells_per_stage + 1 if auxiliary else -1  # after the 2nd reduction
        self.aux_head: nn.Module | None = None
        for k in range(n):
            reduction = k in (cells_per_stage, 2 * cells_per_stage + 1)
            if reduction:
                c *= 2
            cell = Cell(arch.reduce if reduction else arch.normal, c_pp, c_p, c, reduction,
                        reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.c_out
            if k == self.aux_at:
                self.aux_head = AuxiliaryHead(c_p, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = s1 = self.stem(x)  # (B, 3C, H, W)
        aux = None
        for k, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if k == self.aux_at and self.training and self.aux_head is not None:
                aux = self.aux_head(s1)
        logits = self.classifier(self.dropout(s1.mean(dim=(2, 3))))  # (B, classes)
        return (logits, aux) if aux is not None else logits


@SPACES.register("nasnet")
class NASNetSpace(SearchSpace):
    name = "nasnet"
    # CPU-sized networks (the paper's are larger: see build / supernet)
    presets = {"search": {"channels": 8, "cells_per_stage": 1},
               "final": {"channels": 16, "cells_per_stage": 2}}
    ops = OPS

    def __init__(self, blocks: int = 5) -> None:
        self.n_blocks = blocks
        self._decisions = tuple(
            d for cell in CELLS for b in range(blocks) for d in (
                Decision(f"{cell}/block{b}/input1", b + 2),
                Decision(f"{cell}/block{b}/input2", b + 2),
                Decision(f"{cell}/block{b}/op1", len(OPS), OPS),
                Decision(f"{cell}/block{b}/op2", len(OPS), OPS),
                Decision(f"{cell}/block{b}/combine", 2, COMBINE)))

    def decisions(self) -> Sequence[Decision]:
        return self._decisions

    def decode(self, choices: Sequence[int]) -> NASNetArch:
        c = self.check_choices(choices)
        cells = []
        for k in range(2):
            cells.append(tuple(
                Block(c[p], OPS[c[p + 2]], c[p + 1], OPS[c[p + 3]], COMBINE[c[p + 4]])
                for p in range(5 * self.n_blocks * k, 5 * self.n_blocks * (k + 1), 5)))
        return NASNetArch(*cells)

    def encode(self, arch: Architecture) -> tuple[int, ...]:
        assert isinstance(arch, NASNetArch)
        return tuple(v for cell in (arch.normal, arch.reduce) for b in cell for v in (
            b.in1, b.in2, OPS.index(b.op1), OPS.index(b.op2), COMBINE.index(b.combine)))

    def graphs(self, arch: Architecture) -> list[Graph]:
        assert isinstance(arch, NASNetArch)
        graphs = []
        for name, cell in zip(CELLS, (arch.normal, arch.reduce)):
            names = ("h[k-2]", "h[k-1]") + tuple(f"{b + 2}:{block.combine}"
                                                 for b, block in enumerate(cell)) + ("out",)
            edges = [(i, b + 2, op) for b, block in enumerate(cell)
                     for i, op in ((block.in1, block.op1), (block.in2, block.op2))]
            read = {i for block in cell for i in (block.in1, block.in2)}
            edges += [(2 + b, len(names) - 1, "") for b in range(len(cell)) if 2 + b not in read]
            graphs.append(Graph(f"{name} cell", names, tuple(edges)))
        return graphs

    def parse(self, text: str) -> NASNetArch:
        parts = dict(p.partition(":")[::2] for p in text.strip().replace(" ", "").split(";"))
        if set(parts) != set(CELLS):
            raise ArchitectureError("NASNet string must be 'normal:...;reduce:...'")
        arch = NASNetArch(parse_cell("normal", parts["normal"]),
                          parse_cell("reduce", parts["reduce"]))
        if len(arch.normal) > self.n_blocks:
            raise ArchitectureError(f"NASNet string has {len(arch.normal)} blocks a cell; this "
                                    f"space has at most {self.n_blocks} (set blocks)")
        return arch

    def build(self, arch: Architecture, channels: int = 16, cells_per_stage: int = 2,
              num_classes: int = 10, in_channels: int = 3, auxiliary: bool = False,
              dropout: float = 0.0, **_: Any) -> NASNetwork:
        assert isinstance(arch, NASNetArch)
        return NASNetwork(arch, channels, cells_per_stage, num_classes, in_channels,
                          auxiliary=auxiliary, dropout=dropout)
