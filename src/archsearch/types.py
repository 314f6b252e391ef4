"""The plain values every part of archsearch exchanges.

They are frozen dataclasses and enums of plain Python values, so they can cross process and
machine boundaries (process pools, Ray) and be written to storage as JSON.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Decision:
    """One categorical choice of a search space: pick one of ``n_options``.

    A search space is an ordered list of decisions; an architecture is one integer per decision.
    ``options`` optionally names the choices (op names), for display and for encodings.
    """

    label: str
    n_options: int
    options: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.n_options < 1:
            raise ValueError(f"decision {self.label!r} needs at least one option")
        if self.options is not None and len(self.options) != self.n_options:
            raise ValueError(
                f"decision {self.label!r}: {len(self.options)} option names for "
                f"{self.n_options} options"
            )


@dataclass(frozen=True)
class Budget:
    """How much an estimator may spend on one architecture: a fidelity.

    ``epochs`` of training (fractional epochs train that fraction of the steps), ``steps``
    (optimizer steps) or ``fraction`` (of the training data, in (0, 1]); a field left ``None``
    is the estimator's own default. A multi-fidelity strategy (Hyperband) proposes the same
    architecture at growing budgets; ``key`` tells such proposals apart.
    """

    epochs: float | None = None
    steps: int | None = None
    fraction: float | None = None

    def __post_init__(self) -> None:
        if self.epochs is not None and not (math.isfinite(self.epochs) and self.epochs > 0):
            raise ValueError(f"a budget's epochs must be a positive number, not {self.epochs}")
        if self.steps is not None and (isinstance(self.steps, bool) or int(self.steps) != self.steps
                                       or self.steps < 1):
            raise ValueError(f"a budget's steps must be a positive integer, not {self.steps}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError(f"a budget's fraction must be in (0, 1], not {self.fraction}")

    def key(self) -> str:
        """A canonical text, e.g. ``epochs=27`` (empty for the estimator's default budget)."""
        return ",".join(f"{k}={v:g}" for k, v in self.to_json().items() if v is not None)

    def to_json(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "steps": self.steps, "fraction": self.fraction}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Budget | None:
        if data is None:
            return None
        budget = cls(epochs=data.get("epochs"), steps=data.get("steps"),
                     fraction=data.get("fraction"))
        return None if not budget.key() else budget


class TrialState(str, enum.Enum):
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True)
class Result:
    """What an estimator says of one architecture.

    ``objective`` is maximised. ``metrics`` carries named values with units in their keys
    (``val_acc``, ``test_acc``, ``params_m``, ``train_seconds``, ``train_cpu_seconds``). A failed evaluation has
    ``state=FAILED``, ``objective=nan`` and the reason in ``error``.
    """

    objective: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    cost_seconds: float = 0.0
    state: TrialState = TrialState.COMPLETE
    error: str | None = None

    @classmethod
    def failed(cls, error: str, cost_seconds: float = 0.0) -> Result:
        return cls(math.nan, {}, cost_seconds, TrialState.FAILED, error)

    @property
    def ok(self) -> bool:
        return self.state is TrialState.COMPLETE and math.isfinite(self.objective)

    def to_json(self) -> dict[str, Any]:
        return {
            "objective": None if math.isnan(self.objective) else self.objective,
            "metrics": dict(self.metrics),
            "cost_seconds": self.cost_seconds,
            "state": self.state.value,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        objective = data.get("objective")
        return cls(math.nan if objective is None else float(objective),
                   dict(data.get("metrics") or {}), float(data.get("cost_seconds", 0.0)),
                   TrialState(data.get("state", "complete")), data.get("error"))


@dataclass(frozen=True)
class TrialRecord:
    """One row of a run's trial table."""

    number: int
    arch: str
    state: TrialState
    objective: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 1
    budget: Budget | None = None  # the fidelity it was evaluated at (None: the default)
    cost_seconds: float | None = None  # what the estimator says it spent (simulated or real)

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at
