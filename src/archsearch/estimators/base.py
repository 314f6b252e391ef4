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

    def evaluate_query(self, query: int, arch: Architecture,
                       budget: Budget | None = None) -> Result:
        """``evaluate`` as query ``query`` of a run (its trial number, from 0): what an
        experiment calls. An estimator whose answer depends on the query (a noisy one that
        draws per query, deterministically, so that a resumed run observes the same) overrides
        this; the others answer as ``evaluate``."""
        return self.evaluate(arch, budget)


def require(condition: bool, message: str) -> None:
    """Refuse an impossible option value (a UserError: the user's to fix) before any work."""
    if not condition:
        from archsearch.errors import UserError

        raise UserError(message)


def check_training_options(where: str, *, epochs: float | None = None,
                           batch_size: int | None = None, lr: float | None = None,
                           weight_decay: float | None = None) -> None:
    """The ranges every training estimator's common options must be in."""
    import math

    if epochs is not None:
        require(math.isfinite(epochs) and epochs > 0, f"{where}: epochs must be positive, "
                f"not {epochs:g}")
    if batch_size is not None:
        require(batch_size >= 1, f"{where}: batch_size must be at least 1, not {batch_size}")
    if lr is not None:
        require(math.isfinite(lr) and lr > 0, f"{where}: lr must be a positive number, "
                f"not {lr:g}")
    if weight_decay is not None:
        require(math.isfinite(weight_decay) and weight_decay >= 0,
                f"{where}: weight_decay must be at least 0, not {weight_decay:g}")
