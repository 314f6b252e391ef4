"""PNAS' progressive cells: what a cell of one more block (or one more decided edge) can be.

A :class:`Growth` gives the cells of the first level, every expansion of a cell by one more
step, and a fixed-length vector of a cell of any level for the surrogate.

- ``nasnet`` (Liu et al., ECCV 2018, section 3): a block is two (input, op) pairs and a
  combination; block b reads any of the cell's two inputs and its b earlier blocks. The two
  pairs are unordered (the paper removes the symmetric duplicates): the pairs ``p <= q`` of
  the (input, op) list. With the paper's 8 ops and ``add`` only there are 136 one-block cells
  (the paper's |B_1|) and 300 second blocks per cell. As in the paper the reduction cell is the
  normal cell (the space applies stride 2 to ops that read a cell input). A cell's vector: per
  block slot, one-hot input 1, op 1, input 2, op 2, combination (slots of missing blocks
  zero), then the mean of the blocks' one-hots (the paper's MLP averages its blocks' token
  embeddings, which is what lets it judge a block at a position it has not seen yet).
- ``nb201`` (an adaptation; NB201 has no blocks): the 6 edges are decided one at a time in
  a fixed order (``EDGE_ORDER``); an undecided edge is ``none``. Level l has the order's first
  l edges decided. The order starts with the input-to-output edge: the canonical order
  (1<-0 first) leaves the output unconnected, every cell the same zero network, until its
  fourth edge, so three levels would learn nothing; then node 1's edges, then node 2's.
  A cell's vector: the space's one-hot encoding, then each op's share of the 6 edges (shared
  across positions, as the blocks' mean on nasnet).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np

from archsearch.encodings import one_hot
from archsearch.errors import UserError
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.spaces.nasnet import COMBINE, Block, NASNetArch
from archsearch.spaces.nasnet import OPS as NASNET_OPS
from archsearch.spaces.nb201 import EDGES, NB201Cell
from archsearch.spaces.nb201 import OPS as NB201_OPS

# the paper's 8 ops, as the nasnet space names them
PNAS_OPS = ("sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "conv_1x7_7x1", "identity",
            "avg_pool_3x3", "max_pool_3x3", "dil_conv_3x3")
SUPPORTED = ("nasnet", "nb201")
# the nb201 edges (indices into EDGES) in the order the adaptation decides them:
# 3<-0, 1<-0, 3<-1, 2<-0, 2<-1, 3<-2
EDGE_ORDER = tuple(EDGES.index(e) for e in ((3, 0), (1, 0), (3, 1), (2, 0), (2, 1), (3, 2)))


class Growth(abc.ABC):
    """Cells grown one step at a time, up to ``levels`` steps."""

    levels: int

    @abc.abstractmethod
    def expand(self, cell: Architecture | None, level: int) -> list[Architecture]:
        """Every cell of ``level + 1`` steps that extends ``cell`` (of ``level`` steps; None:
        the empty cell, level 0), each exactly once, in a fixed order."""

    @abc.abstractmethod
    def vector(self, cell: Architecture) -> np.ndarray:
        """A float32 vector of the same length for a cell of any level."""

    def first_level(self) -> list[Architecture]:
        return self.expand(None, 0)


class NASNetGrowth(Growth):
    def __init__(self, levels: int, ops: Sequence[str], combines: Sequence[str]) -> None:
        self.levels, self.ops, self.combines = levels, tuple(ops), tuple(combines)

    def blocks(self, b: int) -> list[Block]:
        """Block b's options: unordered pairs of (input, op), times the combinations."""
        pairs = [(i, op) for i in range(b + 2) for op in self.ops]
        return [Block(i1, op1, i2, op2, c) for p, (i1, op1) in enumerate(pairs)
                for i2, op2 in pairs[p:] for c in self.combines]

    def expand(self, cell: Architecture | None, level: int) -> list[Architecture]:
        blocks = () if cell is None else cell.normal  # type: ignore[attr-defined]
        assert len(blocks) == level
        return [NASNetArch(blocks + (b,), blocks + (b,)) for b in self.blocks(level)]

    def vector(self, cell: Architecture) -> np.ndarray:
        assert isinstance(cell, NASNetArch)
        n_in = self.levels + 1  # the last block reads one of levels + 1 hidden states
        sizes = (n_in, len(self.ops), n_in, len(self.ops), len(self.combines))
        width = sum(sizes)
        slots = np.zeros((self.levels, width), dtype=np.float32)  # (B, width)
        for b, block in enumerate(cell.normal):
            values = (block.in1, self.ops.index(block.op1), block.in2,
                      self.ops.index(block.op2), self.combines.index(block.combine))
            offsets = np.cumsum((0,) + sizes[:-1])
            slots[b, offsets + np.asarray(values)] = 1.0
        return np.concatenate([slots.ravel(), slots[:len(cell.normal)].mean(axis=0)])


class NB201Growth(Growth):
    def __init__(self, space: SearchSpace, levels: int) -> None:
        self.space, self.levels = space, levels

    def expand(self, cell: Architecture | None, level: int) -> list[Architecture]:
        ops = ("none",) * len(EDGES) if cell is None else cell.ops  # type: ignore[attr-defined]
        assert all(ops[e] == "none" for e in EDGE_ORDER[level:])
        edge = EDGE_ORDER[level]
        return [NB201Cell(ops[:edge] + (op,) + ops[edge + 1:]) for op in NB201_OPS]

    def vector(self, cell: Architecture) -> np.ndarray:
        ops = cell.ops  # type: ignore[attr-defined]
        counts = np.array([ops.count(op) for op in NB201_OPS], dtype=np.float32) / len(ops)
        return np.concatenate([one_hot(self.space, cell), counts])


def make_growth(space: SearchSpace, max_blocks: int | None, ops: Sequence[str] | None,
                combines: Sequence[str] | None) -> Growth:
    """The growth of ``space`` (UserError on a space PNAS does not grow)."""
    if space.name == "nasnet":
        limit = space.n_blocks  # type: ignore[attr-defined]
        levels = limit if max_blocks is None else max_blocks
        if not 1 <= levels <= limit:
            raise UserError(f"pnas: max_blocks must be in 1..{limit} (the space's blocks)")
        ops = PNAS_OPS if ops is None else tuple(ops)
        combines = ("add",) if combines is None else tuple(combines)
        for name, given, valid in (("ops", ops, NASNET_OPS), ("combines", combines, COMBINE)):
            if not given or len(set(given)) != len(given) or not set(given) <= set(valid):
                raise UserError(f"pnas: {name} must be distinct names among "
                                f"{', '.join(valid)}; got {', '.join(given) or 'none'}")
        return NASNetGrowth(levels, ops, combines)
    if space.name == "nb201":
        levels = len(EDGES) if max_blocks is None else max_blocks
        if not 1 <= levels <= len(EDGES):
            raise UserError(f"pnas: on nb201 max_blocks (edges decided) must be in "
                            f"1..{len(EDGES)}")
        if ops is not None or combines is not None:
            raise UserError("pnas: ops and combines are options of the nasnet space only")
        return NB201Growth(space, levels)
    raise UserError(f"pnas grows cells of the spaces {', '.join(SUPPORTED)}; not of "
                    f"{space.name!r}")
