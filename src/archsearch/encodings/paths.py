"""BANANAS' path encoding (White et al., AAAI 2021): one bit per possible input -> output path.

A path is the sequence of ops on the edges from one of a cell's inputs to its output
(unlabelled edges add no op). The encoding has a bit for every sequence of 1 to ``max_length``
ops of the space's vocabulary, per cell and input, set when the cell contains such a path.
NB201 (one cell, one input, 5 ops, paths of 1 to 3 ops) has 5 + 25 + 125 = 155 bits.

Bits are ordered by path length first (then cell, input, and the op sequence in the
vocabulary's lexicographic order), so ``max_paths`` truncation keeps the shortest paths, as
naszilla's ``trunc_path`` does (its NB201 default, 30 bits: the paths of one and two ops).

Unlike naszilla's NB201 code (``nas_bench_201/cell_201.py``), which sets a bit for each of
the cell's four paths whatever their ops, a path through ``none`` does not exist here (the
space's graph has no such edge), so cells that compute nothing along a path differ from
those that do. Two paths with the same ops (NB201's two 2-op paths, say) set one bit.
"""

from __future__ import annotations

import numpy as np

from archsearch.encodings.layout import CellLayout, cell_layout
from archsearch.errors import UserError
from archsearch.spaces.base import Architecture, Graph, SearchSpace


def cell_paths(graph: Graph, inputs: int) -> list[tuple[int, tuple[str, ...]]]:
    """(input, ops) for every path from one of the first ``inputs`` nodes to the last node."""
    successors: dict[int, list[tuple[int, str]]] = {}
    for src, dst, label in graph.edges:
        successors.setdefault(src, []).append((dst, label))
    out = len(graph.nodes) - 1
    found: list[tuple[int, tuple[str, ...]]] = []

    def walk(start: int, node: int, ops: tuple[str, ...]) -> None:
        if node == out:
            found.append((start, ops))
            return
        for dst, label in successors.get(node, ()):
            walk(start, dst, ops + (label,) if label else ops)

    for start in range(inputs):
        walk(start, start, ())
    return found


def path_length(space: SearchSpace) -> int:
    """The number of bits of ``space``'s full path encoding."""
    layout = cell_layout(space)
    return _offsets(layout)[-1]


def _offsets(layout: CellLayout) -> list[int]:
    """Where the bits of paths of each length start (index 0: length 1), then the total."""
    groups, vocab = layout.graphs * layout.inputs, len(layout.ops)
    offsets = [0]
    for length in range(1, layout.max_length + 1):
        offsets.append(offsets[-1] + groups * vocab ** length)
    return offsets


def check_max_paths(max_paths: int | None) -> None:
    if max_paths is not None and max_paths < 1:
        raise UserError(f"max_paths must be at least 1, not {max_paths}")


def path_encoding(space: SearchSpace, arch: Architecture,
                  max_paths: int | None = None) -> np.ndarray:
    """The 0/1 path vector of ``arch`` (float32), its first ``max_paths`` bits if given."""
    check_max_paths(max_paths)
    layout = cell_layout(space)
    offsets, vocab = _offsets(layout), len(layout.ops)
    bits = np.zeros(offsets[-1], dtype=np.float32)
    for g, graph in enumerate(space.graphs(arch)):
        for start, ops in cell_paths(graph, layout.inputs):
            if not ops:
                continue  # an input passed straight to the output: no op, no bit
            rank = 0
            for op in ops:
                rank = rank * vocab + layout.ops.index(op)
            group = g * layout.inputs + start
            bits[offsets[len(ops) - 1] + group * vocab ** len(ops) + rank] = 1.0
    return bits if max_paths is None else bits[:max_paths]
