"""One trial as plain values, and the function that runs it in any process.

Only plain values cross an executor: the space and estimator by name and configuration, the
architecture by its string, and a :class:`~archsearch.types.Result` back. Each process builds
its space and estimator once and keeps them (the estimator may hold a dataset).
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from archsearch.estimators.base import Estimator
from archsearch.registry import ESTIMATORS, SPACES, Spec
from archsearch.spaces.base import SearchSpace
from archsearch.types import Budget, Result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialTask:
    number: int
    space: Spec
    estimator: Spec
    arch: str
    budget: Budget | None = None

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "space": self.space.to_json(),
                "estimator": self.estimator.to_json(), "arch": self.arch,
                "budget": None if self.budget is None else self.budget.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialTask:
        return cls(int(data["number"]), Spec.from_json(data["space"]),
                   Spec.from_json(data["estimator"]), str(data["arch"]),
                   Budget.from_json(data.get("budget")))


def _key(spec: Spec) -> str:
    return json.dumps(spec.to_json(), sort_keys=True, default=str)


@lru_cache(maxsize=4)
def _space(key: str) -> SearchSpace:
    spec = Spec.from_json(json.loads(key))
    return SPACES.create(spec.name, **spec.config)


@lru_cache(maxsize=2)
def _estimator(space_key: str, key: str) -> Estimator:
    spec = Spec.from_json(json.loads(key))
    return ESTIMATORS.create(spec.name, space=_space(space_key), **spec.config)


def build_space(spec: Spec) -> SearchSpace:
    """The process-wide instance of a space (built once per configuration)."""
    return _space(_key(spec))


def build_estimator(space: Spec, estimator: Spec) -> Estimator:
    """The process-wide instance of an estimator (built once per configuration)."""
    return _estimator(_key(space), _key(estimator))


def run_trial(task: TrialTask) -> Result:
    """Evaluate one architecture; an exception becomes a failed Result with its message."""
    started = time.perf_counter()
    try:
        space = build_space(task.space)
        estimator = build_estimator(task.space, task.estimator)
        return estimator.evaluate_query(task.number, space.parse(task.arch), task.budget)
    except Exception as exc:
        log.warning("trial %d failed: %s", task.number, exc)
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return Result.failed(detail, time.perf_counter() - started)

