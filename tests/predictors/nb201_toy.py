"""A toy objective on NB201 cells for the predictor tests: the number of convolutions (0 to 6),
which needs no reference data and which every predictor here should learn."""

from __future__ import annotations

import numpy as np

from archsearch.spaces.nb201 import NB201Cell, NB201Space

SPACE = NB201Space()
Labelled = tuple[list[NB201Cell], list[float]]  # cells and their objective


def convolutions(cell: NB201Cell) -> float:
    return float(sum(op.startswith("nor_conv") for op in cell.ops))


def train_and_held_out(n_train: int = 200, n_test: int = 200,
                       seed: int = 0) -> tuple[Labelled, Labelled]:
    """Disjoint sets of distinct cells: (train cells, values), (held-out cells, values)."""
    rng = np.random.default_rng(seed)
    seen: dict[str, NB201Cell] = {}
    while len(seen) < n_train + n_test:
        cell = SPACE.sample(rng)
        seen.setdefault(cell.to_str(), cell)  # type: ignore[arg-type]
    cells = list(seen.values())
    train, test = cells[:n_train], cells[n_train:]
    return ((train, [convolutions(c) for c in train]),
            (test, [convolutions(c) for c in test]))
