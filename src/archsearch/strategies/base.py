"""The strategy protocol and its shared plumbing.

A strategy proposes architectures and learns from their results. It never sees threads, files,
processes or Ray: the :class:`~archsearch.experiment.Experiment` drives it through ``ask`` and
``tell``, which keep the books (what is pending, how many results came back) and call the two
methods a strategy implements:

- ``suggest()``: the next architecture, or a :class:`Proposal` (an architecture *with a budget*,
  for multi-fidelity strategies), or :data:`WAIT` ("nothing now: wait for a result", e.g. at a
  successive-halving rung barrier), or ``None`` (finished: nothing more to propose);
- ``observe(proposal, result)``: one result, possibly out of order when trials run in parallel.

``pending`` lists the proposals whose results have not come back (a Bayesian optimiser
fantasises them). ``state_dict`` / ``load_state_dict`` save and restore everything, including
``pending``, so that a resumed experiment continues exactly.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.types import Budget, Result


@dataclass(frozen=True)
class Proposal:
    """An architecture to evaluate at a budget (``None``: the estimator's default)."""

    arch: Architecture
    budget: Budget | None = None

    def key(self) -> str:
        return proposal_key(self.arch.to_str(), self.budget)


def proposal_key(arch: str, budget: Budget | None) -> str:
    """What deduplication and pending bookkeeping key on: the architecture's string, plus the
    budget when there is one (``arch@epochs=9``), so a promotion to a higher rung is new."""
    text = budget.key() if budget is not None else ""
    return f"{arch}@{text}" if text else arch


class Wait:
    """The type of :data:`WAIT`."""

    _instance: Wait | None = None

    def __new__(cls) -> Wait:  # one instance, so that ``is WAIT`` works after unpickling too
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "WAIT"


WAIT: Final = Wait()


def as_proposal(item: Architecture | Proposal) -> Proposal:
    return item if isinstance(item, Proposal) else Proposal(item)


class Strategy(abc.ABC):
    """Seeded, resumable proposer over one search space.

    Subclasses implement ``suggest`` and ``observe``, own all their randomness through
    ``self.rng`` (a numpy Generator seeded from ``seed``), and extend ``state_dict`` /
    ``load_state_dict`` with their own fields.

    With ``dedup`` (the default), a strategy does not propose an (architecture, budget) it
    proposed before: on a deterministic estimator that would only repeat a known result.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, dedup: bool = True) -> None:
        self.space = space
        self.seed = seed
        self.dedup = dedup
        self.rng = np.random.default_rng(seed)
        self.seen: set[str] = set()  # proposal keys of everything proposed so far
        self.n_told = 0
        self.pending: list[Proposal] = []  # proposed, result not yet told, in proposal order

    # ---- what a strategy implements --------------------------------------------------------

    @abc.abstractmethod
    def suggest(self) -> Architecture | Proposal | Wait | None: ...

    @abc.abstractmethod
    def observe(self, proposal: Proposal, result: Result) -> None: ...

    # ---- what the experiment calls ---------------------------------------------------------

    def ask(self) -> Architecture | Proposal | Wait | None:
        """The next proposal (as ``suggest`` gave it), WAIT, or None when finished."""
        item = self.suggest()
        if item is not None and item is not WAIT:
            self.pending.append(as_proposal(item))  # type: ignore[arg-type]
        return item

    def tell(self, item: Architecture | Proposal, result: Result) -> None:
        """The result of an earlier proposal (an architecture or a Proposal)."""
        proposal = as_proposal(item)
        key = proposal.key()
        for i, p in enumerate(self.pending):
            if p.key() == key:
                del self.pending[i]
                break
        self.n_told += 1
        self.observe(proposal, result)

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "seen": sorted(self.seen),
            "n_told": self.n_told,
            "pending": [[p.arch.to_str(), None if p.budget is None else p.budget.to_json()]
                        for p in self.pending],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.seen = set(state["seen"])
        self.n_told = state["n_told"]
        self.pending = [Proposal(self.space.parse(a), Budget.from_json(b))
                        for a, b in state.get("pending", [])]

    # ---- helpers for subclasses ------------------------------------------------------------

    def exhausted(self) -> bool:
        return self.dedup and len(self.seen) >= self.space.size()

    def propose(self, candidate: Architecture, budget: Budget | None = None) -> bool:
        """Record ``candidate`` (at ``budget``) as proposed; False when dedup rejects it as
        already proposed."""
        key = proposal_key(candidate.to_str(), budget)
        if self.dedup and key in self.seen:
            return False
        self.seen.add(key)
        return True

    def random_unseen(self, max_tries: int = 1000) -> Architecture | None:
        """A uniform sample not proposed before (or any sample once ``max_tries`` fail)."""
        if self.exhausted():
            return None
        for _ in range(max_tries):
            arch = self.space.sample(self.rng)
            if self.propose(arch):
                return arch
        arch = self.space.sample(self.rng)
        self.seen.add(arch.to_str())
        return arch
