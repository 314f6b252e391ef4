"""A cell as a graph with its ops on the nodes: (adjacency matrix, node features).

The standard conversion of NB201 predictor papers: each op edge becomes a node, wired from
the op nodes feeding its source and to those reading its target, so the cell's hidden nodes
(sums) disappear; the inputs and the output stay nodes. Built from the space's ``graphs()``:
an NB201 ``none`` edge is no edge there, hence no op node. Unlabelled edges pass their input
on (DARTS' intermediate nodes to the concatenating output).

Per cell the nodes are: the inputs, one slot per possible op edge (``max_edges`` of the
layout, in the graph's edge order, unused slots all zero: a padding mask is
``features.any(axis=1)``), the output. Several cells (DARTS: normal, reduce) sit in one
block-diagonal matrix, in ``graphs()`` order. Features: one-hot over (each input, the
output, each op of the space's vocabulary): NB201 has 8 nodes and 7 features.
"""

from __future__ import annotations

import numpy as np

from archsearch.encodings.layout import cell_layout
from archsearch.spaces.base import Architecture, SearchSpace


def adjacency(space: SearchSpace, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
    """(A, X): A[i, j] = 1 when node i feeds node j; X the node features (float32)."""
    layout = cell_layout(space)
    per_cell = layout.inputs + layout.max_edges + 1
    n = layout.graphs * per_cell
    a = np.zeros((n, n), dtype=np.float32)
    x = np.zeros((n, layout.inputs + 1 + len(layout.ops)), dtype=np.float32)
    for g, graph in enumerate(space.graphs(arch)):
        base, output = g * per_cell, (g + 1) * per_cell - 1
        feeds: dict[int, set[int]] = {}  # graph node -> the encoding's nodes summed into it
        for i in range(layout.inputs):
            feeds[i] = {base + i}
            x[base + i, i] = 1.0
        x[output, layout.inputs] = 1.0
        slot = base + layout.inputs
        for src, dst, label in sorted(graph.edges, key=lambda e: e[1]):  # sources first
            if not label:
                feeds.setdefault(dst, set()).update(feeds.get(src, ()))
                continue
            x[slot, layout.inputs + 1 + layout.ops.index(label)] = 1.0
            for node in feeds.get(src, ()):
                a[node, slot] = 1.0
            feeds.setdefault(dst, set()).add(slot)
            slot += 1
        for node in feeds.get(len(graph.nodes) - 1, ()):
            a[node, output] = 1.0
    return a, x
