"""Regularized (aging) evolution (Real et al., AAAI 2019).

Keep a population of the last ``population_size`` evaluated architectures. Until it is full,
propose random architectures; then pick ``sample_size`` members at random, mutate one decision
of the best of them, and propose the child. Each new result joins the population and the
oldest member dies (aging, not the worst: this is the "regularization").

``warm_start``: architecture strings proposed first, in place of the random initial population
(e.g. the best of a large random pool by a training-free proxy: see
:func:`archsearch.estimators.zero_cost.warm_start`). The strategy never sees how they were chosen.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from archsearch.registry import STRATEGIES
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.strategies.base import Proposal, Strategy
from archsearch.types import Result


@STRATEGIES.register("evolution")
class RegularizedEvolution(Strategy):
    def __init__(
        self, space: SearchSpace, seed: int = 0, population_size: int = 20,
        sample_size: int = 5, dedup: bool = True, warm_start: list[str] | None = None,
    ) -> None:
        super().__init__(space, seed, dedup)
        if not 1 <= sample_size <= population_size:
            raise ValueError("need 1 <= sample_size <= population_size")
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[tuple[str, float]] = deque()  # (arch string, objective), oldest first
        self.n_asked = 0
        self.warm_start = [space.parse(a).to_str() for a in (warm_start or [])]

    def suggest(self) -> Architecture | None:
        self.n_asked += 1
        while self.n_asked <= len(self.warm_start):
            arch = self.space.parse(self.warm_start[self.n_asked - 1])
            if self.propose(arch):
                return arch
            self.n_asked += 1  # a repeat in the list: take the next one
        if self.n_asked <= self.population_size or not self.population:
            return self.random_unseen()
        if self.exhausted():
            return None
        members = list(self.population)
        for _ in range(100):  # a few tries to find a child not seen before
            picks = self.rng.choice(len(members), size=min(self.sample_size, len(members)),
                                    replace=False)
            parent = max((members[int(i)] for i in picks), key=lambda m: m[1])
            child = self.space.mutate(self.space.parse(parent[0]), self.rng)
            if self.propose(child):
                return child
        return self.random_unseen()

    def observe(self, proposal: Proposal, result: Result) -> None:
        if not result.ok:
            return  # a failed trial neither joins the population nor ages it
        self.population.append((proposal.arch.to_str(), float(result.objective)))
        while len(self.population) > self.population_size:
            self.population.popleft()

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "population": [list(m) for m in self.population],
            "n_asked": self.n_asked,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = deque((a, float(o)) for a, o in state["population"])
        self.n_asked = state["n_asked"]
