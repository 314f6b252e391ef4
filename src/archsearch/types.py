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
    """How much an estimator may spend on one architecture (``None``: its own default)."""

    epochs: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"epochs": self.epochs}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Budget | None:
        return None if data is None else cls(epochs=data.get("epochs"))


class TrialState(str, enum.Enum):
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True)
class Result:
    """What an estimator says of one architecture.

    ``objective`` is maximised. ``metrics`` carries named values with units in their keys
    (``val_acc``, ``test_acc``, ``params_m``, ``train_seconds``). A failed evaluation has
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

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at
