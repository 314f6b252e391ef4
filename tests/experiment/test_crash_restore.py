"""Resume after a crash with trials in flight (in process, so that mutation testing sees it):
trials proposed before the last checkpoint are re-submitted as they were (architecture and
budget), trials proposed after it are re-asked in order; the finished run equals an
uninterrupted one, row for row."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import pytest

from archsearch.experiment import Experiment, SQLiteStorage
from archsearch.experiment.trial import build_space, run_trial
from archsearch.registry import STRATEGIES, Spec
from archsearch.types import Result, TrialState

SPACE = Spec("toy", {"n_decisions": 4, "n_options": 4})
N = 26


class Crash(BaseException):
    """The process dying (not an Exception: nothing may catch it)."""


class TwoSlots:
    """Two trials at once, each run when submitted (deterministic); optionally the process
    'dies' when a given trial number is submitted."""

    capacity = 2

    def __init__(self, die_at_submit: int | None = None) -> None:
        self.die_at_submit = die_at_submit

    def submit(self, task) -> Future[Result]:  # type: ignore[no-untyped-def]
        if task.number == self.die_at_submit:
            raise Crash
        future: Future[Result] = Future()
        future.set_result(run_trial(task))
        return future

    def shutdown(self, cancel: bool = False) -> None:
        pass


def strategy(name: str, seed: int = 0):  # type: ignore[no-untyped-def]
    space = build_space(SPACE)
    if name == "hyperband":
        return STRATEGIES.create(name, space=space, seed=seed, min_budget=1, max_budget=9)
    return STRATEGIES.create(name, space=space, seed=seed, population_size=5, sample_size=2)


def rows(storage: SQLiteStorage) -> list[tuple]:
    return [(r.number, r.arch, r.budget, r.state, r.objective) for r in storage.trials()]


def uninterrupted(tmp_path: Path, name: str) -> list[tuple]:
    storage = SQLiteStorage(tmp_path / "whole.db")
    Experiment(SPACE, Spec("toy", {}), strategy(name), storage, TwoSlots()).run(n_trials=N)
    return rows(storage)


# with two slots, trials go in pairs (hyperband's rung barriers shift them): the trial whose
# result is recorded while another is in flight, and a pair proposed together
RESULT_WITH_ONE_IN_FLIGHT = {"evolution": 10, "hyperband": 9}
PAIR = {"evolution": (12, 13), "hyperband": (13, 14)}


@pytest.mark.parametrize("name", ["evolution", "hyperband"])
def test_a_crash_after_a_result_resubmits_the_trial_in_flight(tmp_path: Path,
                                                              name: str) -> None:
    # dies while recording trial k's result: trial k + 1, proposed before that checkpoint, is
    # in flight; its result must be told before anything new is asked
    k = RESULT_WITH_ONE_IN_FLIGHT[name]

    def die_after(record) -> None:  # type: ignore[no-untyped-def]
        if record.number == k:
            raise Crash

    storage = SQLiteStorage(tmp_path / "crashed.db")
    with pytest.raises(Crash):
        Experiment(SPACE, Spec("toy", {}), strategy(name), storage, TwoSlots()).run(
            n_trials=N, on_trial=die_after)
    storage.close()
    storage = SQLiteStorage(tmp_path / "crashed.db")
    running = [r for r in storage.trials() if r.state is TrialState.RUNNING]
    assert [r.number for r in running] == [k + 1]
    resumed = Experiment(SPACE, Spec("toy", {}), strategy(name, seed=99), storage, TwoSlots())
    assert resumed.n_asked == k + 2
    resumed.run(n_trials=N)
    assert rows(storage) == uninterrupted(tmp_path, name)


@pytest.mark.parametrize("name", ["evolution", "hyperband"])
def test_a_crash_while_submitting_re_asks_every_trial_proposed_after_the_checkpoint(
        tmp_path: Path, name: str) -> None:
    # dies submitting the second of a pair: both are stored as running, both proposed after
    # the last checkpoint, so both are asked for again, in order
    first, second = PAIR[name]
    storage = SQLiteStorage(tmp_path / "crashed.db")
    with pytest.raises(Crash):
        Experiment(SPACE, Spec("toy", {}), strategy(name), storage,
                   TwoSlots(die_at_submit=second)).run(n_trials=N)
    storage.close()
    storage = SQLiteStorage(tmp_path / "crashed.db")
    running = [r.number for r in storage.trials() if r.state is TrialState.RUNNING]
    assert running == [first, second]
    resumed = Experiment(SPACE, Spec("toy", {}), strategy(name, seed=99), storage, TwoSlots())
    assert resumed.n_asked == second + 1
    resumed.run(n_trials=N)
    final = rows(storage)
    assert final == uninterrupted(tmp_path, name)
    assert [r.attempts for r in storage.trials()][first:second + 1] == [2, 2]
