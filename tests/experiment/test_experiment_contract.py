"""The experiment's smaller promises: the best trial, a lost worker as a failed result, the
defaults a bare Experiment takes, what a strategy that waits with nothing running gets, a store
without its checkpoint, the warnings a resume and a retry log, and the checkpoint written with
each result (only for stores that keep one)."""

from __future__ import annotations

import io
import logging
from concurrent.futures import Future

import pytest
import torch

from archsearch.experiment import Experiment, MemoryStorage
from archsearch.experiment.executor import InlineExecutor
from archsearch.experiment.experiment import best_trial, outcome
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec
from archsearch.strategies.base import WAIT, Strategy
from archsearch.types import Result, TrialRecord, TrialState

SPACE = Spec("toy", {"n_decisions": 3, "n_options": 3})


def record(number: int, objective: float | None, state: TrialState = TrialState.COMPLETE
           ) -> TrialRecord:
    return TrialRecord(number, f"toy:{number}", state, objective)


def test_the_best_trial_is_the_highest_objective_of_the_complete_ones() -> None:
    rows = [record(0, 0.5), record(1, 0.9, TrialState.FAILED), record(2, None),
            record(3, 0.7), record(4, 0.95, TrialState.RUNNING), record(5, -1.0)]
    assert best_trial(rows).number == 3
    assert best_trial([record(0, -2.0), record(1, -1.0)]).number == 1
    assert best_trial([]) is None
    assert best_trial([record(0, None), record(1, 0.3, TrialState.FAILED)]) is None


def test_a_future_that_raises_is_a_failed_result_naming_the_error() -> None:
    lost: Future[Result] = Future()
    lost.set_exception(ValueError("worker died"))
    result = outcome(lost)
    assert not result.ok and result.error == "worker lost: ValueError: worker died"
    fine: Future[Result] = Future()
    fine.set_result(Result(0.5, {"a": 1.0}))
    assert outcome(fine).objective == 0.5


def test_a_bare_experiment_runs_inline_in_memory_with_one_retry() -> None:
    exp = Experiment(SPACE, Spec("toy", {}), STRATEGIES.create(
        "random", space=build_space(SPACE), seed=0))
    assert isinstance(exp.storage, MemoryStorage) and isinstance(exp.executor, InlineExecutor)
    assert exp.max_retries == 1 and exp.budget is None and exp.n_asked == 0
    assert len(exp.run(n_trials=4)) == 4 and exp.n_asked == 4


class AlwaysWaits(Strategy):
    def suggest(self):  # type: ignore[no-untyped-def]
        return WAIT

    def observe(self, proposal, result) -> None:  # type: ignore[no-untyped-def]
        pass


def test_waiting_with_nothing_running_is_a_strategy_error_naming_it() -> None:
    exp = Experiment(SPACE, Spec("toy", {}), AlwaysWaits(build_space(SPACE)))
    with pytest.raises(RuntimeError, match="AlwaysWaits waits for a result while no trial is "
                       "running"):
        exp.run(n_trials=3)


def test_finished_trials_without_a_strategy_checkpoint_cannot_resume() -> None:
    storage = MemoryStorage()
    storage.rows[0] = record(0, 0.5)
    with pytest.raises(RuntimeError, match="finished trials but no strategy checkpoint"):
        Experiment(SPACE, Spec("toy", {}), STRATEGIES.create(
            "random", space=build_space(SPACE), seed=0), storage)


class Kept(MemoryStorage):
    """A memory store that keeps the strategy checkpoints, as SQLite does."""

    wants_checkpoints = True

    def __init__(self) -> None:
        super().__init__()
        self.checkpoints: list[tuple[int, bytes | None]] = []

    def finish_trial(self, number, result, checkpoint, n_asked) -> None:  # type: ignore[no-untyped-def]
        super().finish_trial(number, result, checkpoint, n_asked)
        self.checkpoints.append((n_asked, checkpoint))

    def load_checkpoint(self):  # type: ignore[no-untyped-def]
        return next(((n, c) for n, c in reversed(self.checkpoints) if c is not None), None)


def test_each_result_is_stored_with_the_strategy_state_after_it() -> None:
    storage = Kept()
    strategy = STRATEGIES.create("evolution", space=build_space(SPACE), seed=0,
                                 population_size=3, sample_size=2)
    Experiment(SPACE, Spec("toy", {}), strategy, storage).run(n_trials=5)
    assert [n for n, _ in storage.checkpoints] == [1, 2, 3, 4, 5]
    last = torch.load(io.BytesIO(storage.checkpoints[-1][1]), weights_only=True)
    assert last["n_told"] == 5 == strategy.n_told
    plain = MemoryStorage()
    seen: list = []
    plain.finish_trial = lambda n, r, c, k: seen.append(c)  # type: ignore[method-assign]
    plain.rows = {}
    Experiment(SPACE, Spec("toy", {}), STRATEGIES.create(
        "random", space=build_space(SPACE), seed=0), plain).run(n_trials=1)
    assert seen == [None]  # a store that wants none gets none


def test_a_retry_is_logged_with_its_attempt_and_reason(caplog) -> None:
    exp = Experiment(SPACE, Spec("toy", {"fail_on": ["toy:0-0-0"]}),
                     STRATEGIES.create("random", space=build_space(SPACE), seed=0))
    with caplog.at_level(logging.WARNING, logger="archsearch.experiment.experiment"):
        exp.run(n_trials=27)
    (line,) = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert line.startswith("trial ") and "failed (attempt 1), retrying: " in line
    assert "toy failure" in line


def test_a_re_asked_proposal_that_differs_is_logged(caplog) -> None:
    storage = Kept()
    first = STRATEGIES.create("random", space=build_space(SPACE), seed=0)
    Experiment(SPACE, Spec("toy", {}), first, storage).run(n_trials=2)
    storage.start_trial(2, "toy:2-2-2")  # in flight at a crash, proposed after the checkpoint
    other_seed = STRATEGIES.create("random", space=build_space(SPACE), seed=0)
    with caplog.at_level(logging.WARNING, logger="archsearch.experiment.experiment"):
        exp = Experiment(SPACE, Spec("toy", {}), other_seed, storage)
    asked = exp._resubmit[0][1].key()
    assert asked != "toy:2-2-2"  # seeded: the strategy proposes another architecture
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == f"trial 2: re-asked {asked}, was toy:2-2-2"
    assert exp.n_asked == 3
