"""Model-based search in rounds: ``initial`` random proposals, then rounds of proposals picked
by a model fitted on every result so far (BANANAS, predictor-guided evolution, NAO).

A round is fitted only when the previous one is fully told: while a round's proposals are
pending, ``suggest`` waits. A pick of ``None`` stands for a random cell (NAO: where a seed
decodes to nothing new); a round that proposes nothing new falls back to a random cell.
"""

from __future__ import annotations

import abc

from archsearch.spaces.base import Architecture
from archsearch.strategies.base import WAIT, Strategy, Wait


class RoundsStrategy(Strategy):
    """A strategy whose subclass sets ``self.initial`` and writes ``next_round``; it keeps
    ``queue`` (the round's picks not yet proposed, as strings; None: random) and ``n_random``
    in its state."""

    initial: int
    queue: list[str | None]
    n_random: int

    @abc.abstractmethod
    def next_round(self) -> list[Architecture | None]:
        """The next round's picks, best first, fitted on every result so far (None: a random
        cell stands in)."""

    def suggest(self) -> Architecture | Wait | None:
        if self.exhausted():
            return None
        if self.n_random < self.initial:
            self.n_random += 1
            return self.random_unseen()
        while self.queue:
            text = self.queue.pop(0)
            if text is None:
                return self.random_unseen()
            arch = self.space.parse(text)
            if self.propose(arch):
                return arch
        if self.pending:
            return WAIT  # the next round fits on every result of this one
        self.queue = [None if a is None else a.to_str() for a in self.next_round()]
        if not self.queue:
            return self.random_unseen()  # nothing to fit on, or no new pick
        return self.suggest()
