"""PNAS (Liu et al., ECCV 2018, "Progressive Neural Architecture Search"): cells grown one
block at a time, the next level's cells chosen by a surrogate fitted on every cell measured.

1. Level 1 proposes every one-block cell (the paper trains all of them; ``first_level``
   caps the count with a sample drawn from the strategy's RNG, enumeration order kept).
2. Once every result of a level is in (until then: WAIT), level l + 1:
   - parents: the ``beam`` best cells of level l by their measured objective (ties: the
     earlier proposal). The paper expands all of level l's K trained cells; after level 1,
     which trains more than K cells here, the K best of them;
   - expansions: every parent extended by every possible next block, each exactly once
     (:mod:`archsearch.strategies.pnas_cells`); more than ``expansion_limit`` of them: that
     many drawn without replacement with the strategy's RNG;
   - the surrogate (:class:`~archsearch.strategies.pnas_surrogate.FoldEnsemble`: 5 MLPs,
     each fitted on a different 4/5; seeded from the strategy's RNG) is fitted on every
     successful result so far and the ``beam`` expansions of largest mean prediction (ties:
     enumeration order) are the level's proposals, best first.
3. After level ``max_blocks``: finished (None).

On ``nasnet`` a block is the paper's: two (input, op) pairs, unordered, added (``combines``
adds ``concat``), over the paper's 8 ops (``ops`` chooses others), the reduction cell equal
to the normal cell. On ``nb201`` PNAS runs as an adaptation (NB201 cells have no blocks):
the edges are decided one at a time in a fixed order that starts with the input-to-output
edge (:data:`~archsearch.strategies.pnas_cells.EDGE_ORDER`), an undecided edge is ``none``,
level l has l edges decided. There a cell whose newly decided edge is ``none`` is its
parent's architecture: its known result is reused (with ``dedup``; no second proposal) and
it still grows at the next level. Other spaces: a UserError.

Defaults for our scale, not the paper's (K = 256): ``beam`` 16 (on nb201: at most
5 + 5 x 16 = 85 proposals in all, fewer by the reused cells; on nasnet: 136 + 4 x 16 = 200). ``max_blocks`` (the paper's B = 5)
defaults to the space's blocks (nasnet) or its 6 edges (nb201). The model is used only in
the call that starts a level and the level's picks are saved, so a resumed run continues
exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.registry import STRATEGIES
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.strategies.base import WAIT, Proposal, Strategy, Wait
from archsearch.strategies.pnas_cells import make_growth
from archsearch.strategies.pnas_surrogate import FoldEnsemble
from archsearch.types import Result


@STRATEGIES.register("pnas")
class PNAS(Strategy):
    def __init__(self, space: SearchSpace, seed: int = 0, beam: int = 16,
                 max_blocks: int | None = None, expansion_limit: int | None = None,
                 first_level: int | None = None, ops: Sequence[str] | None = None,
                 combines: Sequence[str] | None = None, members: int = 5, steps: int = 300,
                 dedup: bool = True) -> None:
        super().__init__(space, seed, dedup)
        if beam < 1 or members < 1 or steps < 0 or any(
                v is not None and v < 1 for v in (expansion_limit, first_level)):
            raise ValueError("beam, members, expansion_limit and first_level must be at "
                             "least 1, steps at least 0")
        self.growth = make_growth(space, max_blocks, ops, combines)
        self.beam, self.expansion_limit, self.first_level = beam, expansion_limit, first_level
        self.model_options = {"members": members, "steps": steps}
        self.level = 0  # the level being proposed (0: not started)
        self.cells: list[str] = []  # this level's cells, in proposal order
        self.queue: list[str] = []  # this level's cells not yet proposed
        self.results: dict[str, float] = {}  # arch -> objective of each success

    def suggest(self) -> Architecture | Wait | None:
        while True:
            while self.queue:
                arch = self.space.parse(self.queue.pop(0))
                if self.propose(arch):
                    return arch  # else: proposed before, its result is reused
            if self.level >= self.growth.levels:
                return None  # the last level is out (its results may still come)
            if self.pending:
                return WAIT  # the next level fits on every result of this one
            self.cells = [a.to_str() for a in self.next_level()]
            self.queue = list(self.cells)
            if not self.cells:  # no parent succeeded
                self.level = self.growth.levels
                return None

    def next_level(self) -> list[Architecture]:
        """The next level's cells (the module docstring's steps 1 and 2)."""
        self.level += 1
        if self.level == 1:
            cells = self.growth.first_level()
            if self.first_level is not None and len(cells) > self.first_level:
                keep = self.rng.choice(len(cells), self.first_level, replace=False)
                cells = [cells[i] for i in np.sort(keep)]
            return cells
        measured = [(a, i) for i, a in enumerate(self.cells) if a in self.results]
        measured.sort(key=lambda o: (-self.results[o[0]], o[1]))
        parents = [self.space.parse(a) for a, _ in measured[:self.beam]]
        pool = [c for p in parents for c in self.growth.expand(p, self.level - 1)]
        if self.expansion_limit is not None and len(pool) > self.expansion_limit:
            keep = self.rng.choice(len(pool), self.expansion_limit, replace=False)
            pool = [pool[i] for i in np.sort(keep)]
        if not pool:
            return []
        model = FoldEnsemble(seed=int(self.rng.integers(2**31)), **self.model_options)
        known = sorted(self.results)  # a fixed order, whatever order the results came in
        model.fit(self.vectors([self.space.parse(a) for a in known]),
                  [self.results[a] for a in known])
        mean = model.predict(self.vectors(pool))
        return [pool[i] for i in np.argsort(-mean, kind="stable")[:self.beam]]

    def vectors(self, cells: Sequence[Architecture]) -> np.ndarray:
        return np.stack([self.growth.vector(c) for c in cells])  # (n, d)

    def observe(self, proposal: Proposal, result: Result) -> None:
        if result.ok:
            self.results[proposal.arch.to_str()] = float(result.objective)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "level": self.level, "cells": list(self.cells),
                "queue": list(self.queue), "results": [[a, v] for a, v in self.results.items()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.level = int(state["level"])
        self.cells = list(state["cells"])
        self.queue = list(state["queue"])
        self.results = {a: float(v) for a, v in state["results"]}
