"""The experiment loop's own bookkeeping: what ``on_trial`` hears is what is stored, the
experiment's default budget reaches the estimator, a retry carries its reason, a time limit
stops proposing, and a crash cancels the executor."""

from __future__ import annotations

import pytest

from archsearch.experiment import Experiment, MemoryStorage
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec
from archsearch.types import Budget, TrialState
from tests.experiment.test_crash_restore import Crash, TwoSlots

SPACE = Spec("toy", {"n_decisions": 4, "n_options": 4})
FAILING = "toy:0-0-0-0"


def make(strategy: str = "random", storage=None, executor=None, estimator=None,  # type: ignore[no-untyped-def]
         budget: Budget | None = None, **options) -> Experiment:
    space = build_space(SPACE)
    return Experiment(SPACE, estimator or Spec("toy", {}),
                      STRATEGIES.create(strategy, space=space, seed=0, **options),
                      storage if storage is not None else MemoryStorage(), executor,
                      budget=budget)


def fields(r) -> tuple:  # type: ignore[no-untyped-def]
    return (r.number, r.arch, r.state, r.objective, dict(r.metrics), r.error, r.budget,
            r.cost_seconds)


def test_what_on_trial_hears_is_what_is_stored() -> None:
    heard: list = []
    exp = make("hyperband", estimator=Spec("toy", {"fail_on": [FAILING]}), min_budget=1,
               max_budget=9)
    exp.max_retries = 0
    records = exp.run(n_trials=40, on_trial=heard.append)
    assert [fields(r) for r in heard] == [fields(r) for r in records]
    assert {r.state for r in records} >= {TrialState.COMPLETE}
    assert any(r.budget is not None for r in records)


def test_a_trial_that_fails_is_heard_with_its_error_and_no_objective() -> None:
    heard: list = []
    exp = make("random", estimator=Spec("toy", {"fail_on": [FAILING]}))
    exp.max_retries = 0
    exp.run(n_trials=256, on_trial=heard.append)
    (failed,) = [r for r in heard if r.arch == FAILING]
    assert failed.state is TrialState.FAILED and failed.objective is None
    assert "toy failure" in failed.error


def test_the_default_budget_reaches_the_estimator() -> None:
    records = make(budget=Budget(epochs=3)).run(n_trials=5)
    assert all(r.metrics["epochs"] == 3 and r.cost_seconds == 3.0 for r in records)


class NotedStorage(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.notes: list[tuple[int, str | None]] = []

    def start_trial(self, number, arch, note=None, budget=None) -> None:  # type: ignore[no-untyped-def]
        self.notes.append((number, note))
        super().start_trial(number, arch, note, budget)


def test_a_retry_is_started_with_the_reason_of_the_failed_attempt() -> None:
    storage = NotedStorage()
    exp = make(storage=storage, estimator=Spec("toy", {"fail_on": [FAILING]}))
    exp.run(n_trials=256)
    number = next(r.number for r in storage.trials() if r.arch == FAILING)
    notes = [n for k, n in storage.notes if k == number]
    assert notes[0] is None and notes[1].startswith("attempt 1 failed: ")
    assert "toy failure" in notes[1]


def test_a_time_limit_stops_proposing_and_a_generous_one_does_not() -> None:
    assert len(make().run(n_trials=10, time_limit=600.0)) == 10
    assert make().run(n_trials=10, time_limit=1e-9) == []


def test_a_crash_cancels_the_running_trials() -> None:
    class Watched(TwoSlots):
        cancelled: list[bool] = []

        def shutdown(self, cancel: bool = False) -> None:
            self.cancelled.append(cancel)

    executor = Watched(die_at_submit=3)
    with pytest.raises(Crash):
        make(executor=executor).run(n_trials=10)
    assert executor.cancelled == [True]
