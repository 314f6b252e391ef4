"""Hyperband (Li et al., JMLR 2018): brackets of successive halving over a budget in epochs.

With ``eta`` (3), the largest budget R (``max_budget``) and the smallest ``min_budget``, there
are ``s_max + 1`` brackets, s_max = floor(log_eta(R / min_budget)). Bracket s starts
n = ceil((s_max + 1) / (s + 1) * eta^s) random architectures at budget r = R * eta^-s; rung i
evaluates n_i = floor(n * eta^-i) of them at r_i = r * eta^i and promotes the best
floor(n_i / eta) to the next rung, until rung s at budget R. For eta = 3 and budgets 1 to 81
this gives the paper's table: (81, 27, 9, 3, 1), (34, 11, 3, 1), (15, 5, 1), (8, 2), (5).
(HpBandSter, and BOHB built on it, round n down instead: 27 rather than 34 for s = 3.)

A promotion proposes the same architecture at a larger budget: a new (architecture, budget),
so deduplication lets it through, and an estimator that keeps its trained networks
(``full-training`` with ``continue_dir``) continues the lower rung instead of restarting.
While a rung's results are still pending, ``suggest`` answers WAIT (the rung barrier). After
the last bracket the next Hyperband iteration starts, up to ``iterations`` (None: until the
experiment stops it, or the space has no unseen architecture left). Failed trials rank last.
``integer_budgets`` rounds the budgets to whole epochs (tables have a row per epoch).
"""

from __future__ import annotations

import math
from typing import Any

from archsearch.registry import STRATEGIES
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.strategies.base import WAIT, Proposal, Strategy, Wait
from archsearch.types import Budget, Result


def bracket_count(min_budget: float, max_budget: float, eta: float) -> int:
    """s_max + 1: how many brackets one Hyperband iteration has."""
    return math.floor(math.log(max_budget / min_budget) / math.log(eta) + 1e-9) + 1


def bracket(s: int, s_max: int, max_budget: float, eta: float) -> list[tuple[int, float]]:
    """Bracket s as (n_i architectures, budget r_i) per rung (Li et al.'s Algorithm 1)."""
    n = math.ceil((s_max + 1) / (s + 1) * eta**s - 1e-9)
    r = max_budget * eta ** (-s)
    return [(max(1, math.floor(n * eta ** (-i) + 1e-9)), r * eta**i) for i in range(s + 1)]


@STRATEGIES.register("hyperband")
class Hyperband(Strategy):
    def __init__(self, space: SearchSpace, seed: int = 0, min_budget: float = 1.0,
                 max_budget: float = 81.0, eta: float = 3.0, iterations: int | None = None,
                 integer_budgets: bool = True, dedup: bool = True) -> None:
        super().__init__(space, seed, dedup)
        if not 0 < min_budget <= max_budget:
            raise ValueError("need 0 < min_budget <= max_budget")
        if eta <= 1:
            raise ValueError("eta must be larger than 1")
        if iterations is not None and iterations < 1:
            raise ValueError("iterations must be at least 1 (or None: no limit)")
        self.min_budget, self.max_budget, self.eta = min_budget, max_budget, eta
        self.iterations, self.integer_budgets = iterations, integer_budgets
        self.s_max = bracket_count(min_budget, max_budget, eta) - 1
        self.iteration, self.s, self.rung = 0, self.s_max, -1  # rung -1: bracket not started
        self.queue: list[str] = []  # this rung's architectures not yet proposed
        self.members: list[str] = []  # this rung's architectures
        self.results: dict[str, float] = {}  # this rung's results so far
        self.sampled: set[str] = set()  # every architecture started in any bracket

    def budget(self, rung: int) -> Budget:
        r = bracket(self.s, self.s_max, self.max_budget, self.eta)[rung][1]
        return Budget(epochs=float(max(1, round(r))) if self.integer_budgets else r)

    def suggest(self) -> Architecture | Proposal | Wait | None:
        while True:
            if self.queue:
                arch = self.queue.pop(0)
                self.propose(self.space.parse(arch), self.budget(self.rung))
                return Proposal(self.space.parse(arch), self.budget(self.rung))
            if self.rung >= 0 and len(self.results) < len(self.members):
                return WAIT  # the rung barrier: its results are still coming in
            if not self._advance():
                return None

    def _advance(self) -> bool:
        """Fill the queue with the next rung (or the next bracket's first); False when done."""
        plan = bracket(self.s, self.s_max, self.max_budget, self.eta)
        if 0 <= self.rung < self.s:  # promote the best of this rung
            ranked = sorted(self.members, key=lambda a: -self.results[a])  # stable: ties keep order
            self.rung += 1
            self.members = ranked[: plan[self.rung][0]]
        else:  # start a bracket: the next one, or the first of the next iteration
            if self.rung >= 0:
                self.s -= 1
                if self.s < 0:
                    self.iteration, self.s = self.iteration + 1, self.s_max
            if self.iterations is not None and self.iteration >= self.iterations:
                return False
            self.rung = 0
            self.members = self._new_architectures(
                bracket(self.s, self.s_max, self.max_budget, self.eta)[0][0])
            if not self.members:
                return False  # the space has no unseen architecture left
        self.queue, self.results = list(self.members), {}
        return True

    def _new_architectures(self, n: int) -> list[str]:
        out: list[str] = []
        for _ in range(100 * n):
            if len(out) == n or (self.dedup and len(self.sampled) >= self.space.size()):
                break
            arch = self.space.sample(self.rng).to_str()
            if not self.dedup or arch not in self.sampled:
                self.sampled.add(arch)
                out.append(arch)
        return out

    def observe(self, proposal: Proposal, result: Result) -> None:
        arch = proposal.arch.to_str()
        if arch in self.members and proposal.budget == self.budget(self.rung):
            self.results[arch] = float(result.objective) if result.ok else -math.inf

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "iteration": self.iteration, "s": self.s,
                "rung": self.rung, "queue": list(self.queue), "members": list(self.members),
                "results": dict(self.results), "sampled": sorted(self.sampled)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.iteration, self.s, self.rung = state["iteration"], state["s"], state["rung"]
        self.queue, self.members = list(state["queue"]), list(state["members"])
        self.results = {k: float(v) for k, v in state["results"].items()}
        self.sampled = set(state["sampled"])
