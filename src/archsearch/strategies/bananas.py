"""BANANAS (White, Neiswanger & Savani, AAAI 2021): Bayesian optimisation with an ensemble of
neural predictors, as naszilla's ``nas_algorithms.bananas`` runs it.

1. Propose ``initial`` random architectures (the first ones random search would propose with
   the same seed).
2. Each round, once every proposal so far has its result (until then: WAIT):
   - fit the ensemble (:class:`~archsearch.predictors.MLPEnsemble`, freshly seeded from the
     strategy's RNG) on every successful result so far;
   - candidates (naszilla's ``get_candidates``, ``acq_opt_type="mutation"``): take the
     ``parents`` best architectures, best first; while fewer than ``candidates`` are found,
     mutate the next parent ``candidates`` times, keeping children not proposed before and
     not already candidates: the candidates are mutations of the best, topped up from the
     next best when its mutations repeat;
   - a mutation changes each decision, independently with probability
     ``mutation_rate / (d - 2)`` (d decisions; naszilla's NB201 ``mutate``: 1/4 per edge),
     to another option drawn uniformly;
   - independent Thompson sampling (naszilla's ``acq_fn``, ``explore_type="its"``): one draw
     per candidate from a normal with the ensemble's mean and standard deviation for it; the
     ``batch`` candidates with the largest draws are the round's proposals, best draw first.

Defaults are naszilla's (10 initial, batch 10, 100 candidates, 5 parents, the ``standard``
ensemble: 5 networks, 150 epochs), with the path encoding of all 155 NB201 paths (naszilla's
default ``trunc_path`` keeps 30: ``max_paths=30``). The model is only used inside the call
that starts a round, and the round's picks are saved, so a resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.predictors.mlp_ensemble import MLPEnsemble
from archsearch.registry import STRATEGIES
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.strategies.base import Proposal
from archsearch.strategies.rounds import RoundsStrategy
from archsearch.types import Result


def mutate_each(space: SearchSpace, arch: Architecture, rng: np.random.Generator,
                rate: float = 1.0) -> Architecture:
    """Each decision changed with probability ``rate / (d - 2)`` to another option."""
    decisions = space.decisions()
    p = min(1.0, rate / max(len(decisions) - 2, 1))
    choices = list(space.encode(arch))
    for i, d in enumerate(decisions[:len(choices)]):
        if d.n_options > 1 and rng.random() < p:
            choices[i] = (choices[i] + 1 + int(rng.integers(d.n_options - 1))) % d.n_options
    return space.decode(choices)


def mutation_candidates(space: SearchSpace, parents: Sequence[Architecture], seen: set[str],
                        rng: np.random.Generator, n: int = 100,
                        rate: float = 1.0) -> list[Architecture]:
    """Up to about ``n`` new mutations of ``parents`` (best first), as the module says."""
    found: list[Architecture] = []
    keys = set(seen)
    for parent in parents:
        if len(found) >= n:
            break
        for _ in range(n):
            child = mutate_each(space, parent, rng, rate)
            if child.to_str() not in keys:
                keys.add(child.to_str())
                found.append(child)
    return found


def independent_thompson(mean: np.ndarray, std: np.ndarray, k: int,
                         rng: np.random.Generator) -> np.ndarray:
    """The indices of the ``k`` largest of one normal draw per candidate, largest first."""
    draws = rng.normal(mean, std)
    return np.argsort(-draws, kind="stable")[:k]


@STRATEGIES.register("bananas")
class BANANAS(RoundsStrategy):
    def __init__(self, space: SearchSpace, seed: int = 0, initial: int = 10, batch: int = 10,
                 candidates: int = 100, parents: int = 5, mutation_rate: float = 1.0,
                 members: int = 5, epochs: int = 150, encoding: str | None = None,
                 max_paths: int | None = None, dedup: bool = True) -> None:
        super().__init__(space, seed, dedup)
        if min(initial, batch, candidates, parents, members) < 1 or not mutation_rate > 0:
            raise ValueError("initial, batch, candidates, parents and members must be at "
                             "least 1, mutation_rate positive")
        self.initial, self.batch, self.candidates = initial, batch, candidates
        self.parents, self.mutation_rate = parents, mutation_rate
        self.model_options = {"members": members, "epochs": epochs, "encoding": encoding,
                              "max_paths": max_paths}
        MLPEnsemble(space, **self.model_options)  # refuses a bad encoding now
        self.observed: list[tuple[str, float]] = []  # (arch, objective) of each success
        self.queue: list[str] = []  # this round's picks not yet proposed, in order
        self.n_random = 0  # initial random proposals made

    def next_round(self) -> list[Architecture]:
        """The round's proposals: fit, mutate the best, Thompson-sample (module docstring)."""
        if not self.observed:
            return []
        ranked = sorted(self.observed, key=lambda o: -o[1])  # ties: the earlier result first
        parents = [self.space.parse(a) for a, _ in ranked[:self.parents]]
        pool = mutation_candidates(self.space, parents, self.seen, self.rng, self.candidates,
                                   self.mutation_rate)
        if not pool:
            return []
        model = MLPEnsemble(self.space, seed=int(self.rng.integers(2**31)), **self.model_options)
        model.fit([self.space.parse(a) for a, _ in self.observed], [v for _, v in self.observed])
        mean, std = model.predict(pool)
        return [pool[i] for i in independent_thompson(mean, std, self.batch, self.rng)]

    def observe(self, proposal: Proposal, result: Result) -> None:
        if result.ok:
            self.observed.append((proposal.arch.to_str(), float(result.objective)))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "observed": [list(o) for o in self.observed],
                "queue": list(self.queue), "n_random": self.n_random}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.observed = [(a, float(v)) for a, v in state["observed"]]
        self.queue = list(state["queue"])
        self.n_random = int(state["n_random"])
