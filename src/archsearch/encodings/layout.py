"""How a cell space's graphs read for the graph encodings (paths, adjacency).

A cell graph from :meth:`~archsearch.spaces.base.SearchSpace.graphs` has its input nodes
first, its output node last and an op label on each edge (``""``: an unlabelled edge, such as
an intermediate node's link to a concatenating output, which passes its input on unchanged).
What the graph does not say, and a fixed-size encoding needs, is written here per space.
"""

from __future__ import annotations

from dataclasses import dataclass

from archsearch.errors import UserError
from archsearch.spaces.base import SearchSpace


@dataclass(frozen=True)
class CellLayout:
    ops: tuple[str, ...]  # the op labels an edge may carry
    graphs: int  # cells per architecture (graphs() returns this many)
    inputs: int  # input nodes per graph: its first nodes
    max_edges: int  # the most labelled edges a graph has
    max_length: int  # the most ops on one input -> output path


def cell_layout(space: SearchSpace) -> CellLayout:
    """The layout of ``space``'s cells; a UserError naming the spaces that have one."""
    if space.name == "nb201":
        from archsearch.spaces import nb201

        return CellLayout(nb201.OPS, 1, 1, len(nb201.EDGES), nb201.N_NODES - 1)
    if space.name == "darts":
        from archsearch.spaces import darts

        return CellLayout(darts.OPS, len(darts.CELLS), 2, 2 * darts.N_NODES, darts.N_NODES)
    if space.name == "enas-micro":
        from archsearch.spaces import enas_micro

        n = space.n_nodes  # type: ignore[attr-defined]
        return CellLayout(enas_micro.OPS, len(enas_micro.CELLS), 2, 2 * n, n)
    raise UserError(f"space {space.name!r} has no cell layout for graph encodings (paths, "
                    "adjacency); spaces with one: darts, enas-micro, nb201; the one_hot "
                    "encoding works on every space")
