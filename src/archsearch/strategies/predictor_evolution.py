"""Predictor-guided aging evolution: many mutations ranked by a predictor, only the best trained.

Our composition of regularized (aging) evolution (Real et al., AAAI 2019; the ``evolution``
strategy) with a predictor that filters its children, in the style of NPENAS (Wei et al., IEEE
TNNLS 2022, "Neural predictor guided evolution for NAS") and the predictor-guided evolution
White et al. run their predictors in ("How powerful are performance predictors in neural
architecture search?", NeurIPS 2021; NASLib's ``npenas`` optimizer). It is neither paper's
exact method:

1. Propose ``initial`` random architectures (the first ones random search would propose with
   the same seed).
2. Each round, once every proposal so far has its result (until then: WAIT):
   - fit the predictor named by ``predictor`` (any registered one, built with
     ``predictor_options`` and a seed drawn from the strategy's RNG) on every successful
     result so far;
   - make ``candidates`` children, each by one tournament of aging evolution (``sample_size``
     members drawn without replacement from the population, the best of them the parent) and
     one mutation of the parent (``space.mutate``: one decision changed); children proposed
     before or already among the candidates are dropped, and the tournaments go on until there
     are ``candidates`` (or ``20 * candidates`` tournaments have been held);
   - rank the children by the predictor's mean, best first (ties: the earlier child), and
     propose the top ``batch`` as the round.
3. The population is the last ``population_size`` successful results, in the order they came
   back: each joins it and the oldest dies (a failed trial neither joins nor ages it).

Where it departs from NASLib's ``npenas`` (which mutates the ``num_arches_to_mutate`` best
results so far, several mutations each, and trains the ``k`` best by the ensemble's mean):
the parents come from aging-evolution tournaments, not from the best ever seen, so that old
good architectures age out as in ``evolution``; one mutation per child; repeats are dropped.
With a predictor that ranks every candidate alike, a round is ``batch`` children of ordinary
tournaments (in the order they were made).

Defaults: 10 initial, 100 candidates, batch 10 (NASLib's npenas and naszilla's BANANAS:
``num_init`` 10, ``num_candidates`` 100, ``k`` 10), population 20 and tournament 5 (our
``evolution``'s), the ``mlp-ensemble`` predictor with its defaults. The predictor is only used
inside the call that starts a round and the round's picks are saved, so a resumed run
continues exactly.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from archsearch.errors import UserError
from archsearch.predictors.base import Predictor
from archsearch.registry import PREDICTORS, STRATEGIES
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.strategies.base import Proposal
from archsearch.strategies.rounds import RoundsStrategy
from archsearch.types import Result

TOURNAMENTS_PER_CANDIDATE = 20  # how hard a round looks for new children before giving up


@STRATEGIES.register("predictor-evolution")
class PredictorEvolution(RoundsStrategy):
    """Predictor-guided aging evolution: tournament + one mutation, many children ranked by a
    predictor, the best ``batch`` trained each round."""

    def __init__(self, space: SearchSpace, seed: int = 0, initial: int = 10, batch: int = 10,
                 candidates: int = 100, population_size: int = 20, sample_size: int = 5,
                 predictor: str = "mlp-ensemble",
                 predictor_options: dict[str, Any] | None = None, dedup: bool = True) -> None:
        super().__init__(space, seed, dedup)
        if min(initial, batch, candidates) < 1:
            raise ValueError("initial, batch and candidates must be at least 1")
        if not 1 <= sample_size <= population_size:
            raise ValueError("need 1 <= sample_size <= population_size")
        self.initial, self.batch, self.candidates = initial, batch, candidates
        self.population_size, self.sample_size = population_size, sample_size
        self.predictor = predictor
        self.predictor_options = dict(predictor_options or {})
        clash = sorted({"space", "seed"} & set(self.predictor_options))
        if clash:
            raise UserError(f"predictor_options: {', '.join(clash)} is the strategy's to set")
        self.new_predictor(0)  # refuses an unknown name or a bad option now
        self.observed: list[tuple[str, float]] = []  # (arch, objective) of each success
        self.population: deque[tuple[str, float]] = deque()  # the last successes, oldest first
        self.queue: list[str] = []  # this round's picks not yet proposed, in order
        self.n_random = 0  # initial random proposals made

    def new_predictor(self, seed: int) -> Predictor:
        predictor: Predictor = PREDICTORS.create(self.predictor, space=self.space, seed=seed,
                                                 **self.predictor_options)
        return predictor

    def next_round(self) -> list[Architecture]:
        """The round's proposals: children of tournaments, ranked by a freshly fitted
        predictor (module docstring)."""
        if not self.population:
            return []
        children = self.children()
        if not children:
            return []
        model = self.new_predictor(int(self.rng.integers(2**31)))
        model.fit([self.space.parse(a) for a, _ in self.observed], [v for _, v in self.observed])
        mean, _ = model.predict(children)
        order = np.argsort(-np.asarray(mean, dtype=np.float64), kind="stable")
        return [children[int(i)] for i in order[:self.batch]]

    def children(self) -> list[Architecture]:
        """Up to ``candidates`` distinct children not proposed before, each one mutation of a
        tournament's winner."""
        members = list(self.population)
        size = min(self.sample_size, len(members))
        found: list[Architecture] = []
        keys = set(self.seen)
        for _ in range(TOURNAMENTS_PER_CANDIDATE * self.candidates):
            if len(found) >= self.candidates:
                break
            picks = self.rng.choice(len(members), size=size, replace=False)
            parent = max((members[int(i)] for i in picks), key=lambda m: m[1])
            child = self.space.mutate(self.space.parse(parent[0]), self.rng)
            if child.to_str() not in keys:
                keys.add(child.to_str())
                found.append(child)
        return found

    def observe(self, proposal: Proposal, result: Result) -> None:
        if not result.ok:
            return  # a failed trial neither trains the predictor nor joins the population
        entry = (proposal.arch.to_str(), float(result.objective))
        self.observed.append(entry)
        self.population.append(entry)
        while len(self.population) > self.population_size:
            self.population.popleft()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "observed": [list(o) for o in self.observed],
                "population": [list(m) for m in self.population],
                "queue": list(self.queue), "n_random": self.n_random}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.observed = [(a, float(v)) for a, v in state["observed"]]
        self.population = deque((a, float(v)) for a, v in state["population"])
        self.queue = list(state["queue"])
        self.n_random = int(state["n_random"])
