"""Architecture encodings: pure functions of (space, architecture) -> float32 numpy arrays.

- ``one_hot``: every space; the decisions' one-hot vectors, concatenated;
- ``path_encoding``: BANANAS' paths (cell spaces: nb201, darts, enas-micro);
- ``adjacency``: (A, X) with ops on nodes, for graph models (the same cell spaces).

``vector_encoder(space, name)`` picks a flat encoding by name for a predictor.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from archsearch.encodings.adjacency import adjacency
from archsearch.encodings.layout import CellLayout, cell_layout
from archsearch.encodings.one_hot import one_hot
from archsearch.encodings.paths import check_max_paths, path_encoding, path_length
from archsearch.errors import UnknownNameError
from archsearch.spaces.base import Architecture, SearchSpace

VECTOR_ENCODINGS = ("one_hot", "path")


def default_encoding(space: SearchSpace) -> str:
    """BANANAS' path encoding on NB201, one-hot elsewhere."""
    return "path" if space.name == "nb201" else "one_hot"


def vector_encoder(space: SearchSpace, name: str | None = None,
                   max_paths: int | None = None) -> Callable[[Architecture], np.ndarray]:
    """arch -> vector by encoding name (None: ``default_encoding``); ``max_paths`` truncates
    the path encoding."""
    name = name or default_encoding(space)
    if name == "one_hot":
        return lambda arch: one_hot(space, arch)
    if name == "path":
        path_length(space)  # refuses a space without a cell layout now, not at first use
        check_max_paths(max_paths)
        return lambda arch: path_encoding(space, arch, max_paths)
    raise UnknownNameError("encoding", name, VECTOR_ENCODINGS)


__all__ = ["VECTOR_ENCODINGS", "CellLayout", "adjacency", "cell_layout", "default_encoding",
           "one_hot", "path_encoding", "path_length", "vector_encoder"]
