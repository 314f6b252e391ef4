"""The strategy protocol (ask/tell/state_dict/load_state_dict) and its shared plumbing.

A strategy proposes architectures and learns from their results. It never sees threads, files,
processes or Ray: the :class:`~archsearch.experiment.Experiment` drives it. ``tell`` is called
once per ``ask``, possibly out of order when trials run in parallel. ``ask`` returns ``None``
when it has nothing to propose (the space is exhausted).
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.types import Result


class Strategy(abc.ABC):
    """Seeded, resumable proposer over one search space.

    Subclasses own all their randomness through ``self.rng`` (a numpy Generator seeded from
    ``seed``) and extend ``state_dict``/``load_state_dict`` with their own fields.

    With ``dedup`` (the default), a strategy does not propose an architecture it proposed
    before: on a deterministic estimator that would only repeat a known result.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, dedup: bool = True) -> None:
        self.space = space
        self.seed = seed
        self.dedup = dedup
        self.rng = np.random.default_rng(seed)
        self.seen: set[str] = set()  # strings of every architecture proposed so far
        self.n_told = 0

    @abc.abstractmethod
    def ask(self) -> Architecture | None: ...

    @abc.abstractmethod
    def tell(self, arch: Architecture, result: Result) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "seen": sorted(self.seen),
            "n_told": self.n_told,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.seen = set(state["seen"])
        self.n_told = state["n_told"]

    # ---- helpers for subclasses ------------------------------------------------------------

    def exhausted(self) -> bool:
        return self.dedup and len(self.seen) >= self.space.size()

    def propose(self, candidate: Architecture) -> bool:
        """Record ``candidate`` as proposed; False when dedup rejects it as already seen."""
        key = candidate.to_str()
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
