"""A run's best-so-far curve, when what a query observes is not what the curve reports.

Under the oracle-reward protocol a query observes the benchmark's value and the curve is the
best value observed so far. Under the validation-reward protocol a query observes a noisy
validation value, the search keeps the architecture it observed best, and the curve reports
that architecture's test value: a search misled by the noise is charged for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


class BestObserved:
    """After each query: the reported value of the architecture with the best observed value so
    far (the first of equals). ``reported`` maps an architecture string to the value the curve
    reports; without it the curve reports the best observed value itself. Before any query
    succeeds both curves are -inf."""

    def __init__(self, reported: Mapping[str, float] | None = None) -> None:
        self.reported = reported
        self.best_value = -math.inf
        self.best_arch: str | None = None
        self.curve: list[float] = []  # what the run reports after each query
        self.observed_curve: list[float] = []  # the best value it observed

    def add(self, arch: str, observed: float | None) -> None:
        """One query's outcome: ``observed`` is None for a failed query."""
        if observed is not None and observed > self.best_value:
            self.best_value, self.best_arch = observed, arch
        self.observed_curve.append(self.best_value)
        if self.reported is None or self.best_arch is None:
            self.curve.append(self.best_value)
        else:
            self.curve.append(self.reported[self.best_arch])
