"""NAO (Luo et al., NeurIPS 2018, "Neural Architecture Optimization"): rounds of fitting an
encoder-predictor-decoder and moving the best architectures along the predictor's gradient in
its embedding space, as renqianluo/NAO_pytorch's NAO_V1 ``train_search.py`` runs them.

1. Propose ``initial`` random architectures (the first ones random search would propose with
   the same seed).
2. Each round, once every proposal so far has its result (until then: WAIT):
   - fit the ``nao`` predictor (:class:`~archsearch.predictors.nao.NAOPredictor`, freshly
     seeded from the strategy's RNG) on every successful result so far;
   - take the ``seeds_per_round`` best architectures evaluated, best first, and improve each
     (:meth:`~archsearch.predictors.nao.NAOPredictor.improve`: steps ``step_size``,
     ``2 * step_size``, ... up to ``max_steps`` of them) to an architecture not proposed
     before and not already picked this round;
   - those are the round's proposals, in the seeds' order; a seed that decodes to nothing new
     is replaced by a random architecture not proposed before, so a round always has
     ``seeds_per_round`` proposals.

Departures from NAO_V1 (600 random cells, then each round the top 100 improved until 300 new
cells, a predictor of 1,000 epochs): rounds of 10 after 10 random proposals suit the hundreds
of evaluations a CPU affords, and the predictor's CPU-sized defaults are
:class:`~archsearch.predictors.nao.NAOPredictor`'s. The model is only used inside the call that
starts a round, and the round's picks are saved, so a resumed run continues exactly.
"""

from __future__ import annotations

from typing import Any

from archsearch.predictors.nao import NAOPredictor
from archsearch.registry import STRATEGIES
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.strategies.base import Proposal
from archsearch.strategies.rounds import RoundsStrategy
from archsearch.types import Result


@STRATEGIES.register("nao")
class NAO(RoundsStrategy):
    def __init__(self, space: SearchSpace, seed: int = 0, initial: int = 10,
                 seeds_per_round: int = 10, step_size: float = 1.0, max_steps: int = 50,
                 epochs: int = 60, hidden: int = 32, embedding: int = 16,
                 trade_off: float = 0.8, dedup: bool = True) -> None:
        super().__init__(space, seed, dedup)
        if min(initial, seeds_per_round, max_steps) < 1 or not step_size > 0:
            raise ValueError("initial, seeds_per_round and max_steps must be at least 1, "
                             "step_size positive")
        self.initial, self.seeds_per_round = initial, seeds_per_round
        self.step_size, self.max_steps = step_size, max_steps
        self.model_options = {"epochs": epochs, "hidden": hidden, "embedding": embedding,
                              "trade_off": trade_off}
        NAOPredictor(space, **self.model_options)  # refuses bad options now
        self.observed: list[tuple[str, float]] = []  # (arch, objective) of each success
        self.queue: list[str | None] = []  # this round's picks not yet proposed; None: random
        self.n_random = 0  # initial random proposals made

    def next_round(self) -> list[Architecture | None]:
        """The round's picks (module docstring); None where a random one stands in."""
        if not self.observed:
            return []
        ranked = sorted(self.observed, key=lambda o: -o[1])  # ties: the earlier result first
        seeds = [self.space.parse(a) for a, _ in ranked[:self.seeds_per_round]]
        model = NAOPredictor(self.space, seed=int(self.rng.integers(2**31)),
                             **self.model_options)
        model.fit([self.space.parse(a) for a, _ in self.observed], [v for _, v in self.observed])
        avoid = set(self.seen)
        picks: list[Architecture | None] = []
        for seed in seeds:  # one at a time, so that no two seeds land on the same new one
            new = model.improve([seed], self.step_size, self.max_steps, avoid)[0]
            if new is not None:
                avoid.add(new.to_str())
            picks.append(new)
        return picks + [None] * (self.seeds_per_round - len(picks))

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
