"""Random search: uniform over the space's decisions, without repeats by default."""

from __future__ import annotations

from archsearch.registry import STRATEGIES
from archsearch.spaces.base import Architecture
from archsearch.strategies.base import Proposal, Strategy
from archsearch.types import Result


@STRATEGIES.register("random")
class RandomSearch(Strategy):
    def suggest(self) -> Architecture | None:
        return self.random_unseen()

    def observe(self, proposal: Proposal, result: Result) -> None:
        pass
