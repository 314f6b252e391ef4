"""The estimator protocol: how good is an architecture?"""

from __future__ import annotations

import abc

from archsearch.spaces.base import Architecture
from archsearch.types import Budget, Result


class Estimator(abc.ABC):
    """``evaluate(arch, budget) -> Result``; the objective is maximised.

    Estimators are built from plain keyword arguments plus ``space`` (the search space object)
    through the registry, so that a worker process or a Ray task can rebuild one from its name
    and configuration.
    """

    @abc.abstractmethod
    def evaluate(self, arch: Architecture, budget: Budget | None = None) -> Result: ...
