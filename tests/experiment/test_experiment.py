from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.experiment import (
    Experiment,
    MemoryStorage,
    ProcessPoolTrialExecutor,
    SQLiteStorage,
    best_trial,
)
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec
from archsearch.strategies.base import as_proposal
from archsearch.types import TrialState

SPACE = Spec("toy", {"n_decisions": 4, "n_options": 4})
TOY = Spec("toy", {})


def experiment(storage, strategy: str = "evolution", seed: int = 0, executor=None,
               estimator: Spec = TOY) -> Experiment:
    space = build_space(SPACE)
    s = STRATEGIES.create(strategy, space=space, seed=seed, population_size=5, sample_size=2) \
        if strategy == "evolution" else STRATEGIES.create(strategy, space=space, seed=seed)
    return Experiment(SPACE, estimator, s, storage, executor)


def test_runs_the_requested_number_of_trials() -> None:
    records = experiment(MemoryStorage()).run(n_trials=25)
    assert [r.number for r in records] == list(range(25))
    assert all(r.state is TrialState.COMPLETE for r in records)
    assert best_trial(records).objective == max(r.objective for r in records)


@pytest.mark.parametrize("strategy", ["evolution", "reinforce", "random"])
def test_reopened_run_continues_exactly_as_an_uninterrupted_one(tmp_path: Path,
                                                                strategy: str) -> None:
    whole = experiment(SQLiteStorage(tmp_path / "a.db"), strategy).run(n_trials=30)
    first = experiment(SQLiteStorage(tmp_path / "b.db"), strategy)
    first.run(n_trials=12)
    first.storage.close()
    resumed = experiment(SQLiteStorage(tmp_path / "b.db"), strategy, seed=123).run(n_trials=30)
    assert [(r.arch, r.objective) for r in resumed] == [(r.arch, r.objective) for r in whole]


def test_running_trials_left_by_a_crash_are_rerun_not_duplicated(tmp_path: Path) -> None:
    whole = experiment(SQLiteStorage(tmp_path / "a.db")).run(n_trials=20)
    crashed = experiment(SQLiteStorage(tmp_path / "b.db"))
    crashed.run(n_trials=8)
    # simulate a kill after trial 8 was proposed and stored as running, before its result
    arch = crashed.strategy.ask()
    crashed.storage.start_trial(8, arch.to_str())
    crashed.storage.close()
    storage = SQLiteStorage(tmp_path / "b.db")
    assert storage.trials()[-1].state is TrialState.RUNNING
    resumed = experiment(storage).run(n_trials=20)
    assert [r.arch for r in resumed] == [r.arch for r in whole]
    assert [r.attempts for r in resumed][8] == 2
    assert all(r.state is TrialState.COMPLETE for r in resumed)


def test_a_failing_trial_is_recorded_and_the_run_goes_on() -> None:
    space = build_space(SPACE)
    bad = space.decode([0, 0, 0, 0]).to_str()
    estimator = Spec("toy", {"fail_on": [bad]})
    strategy = STRATEGIES.create("random", space=space, seed=0)
    records = Experiment(SPACE, estimator, strategy).run(n_trials=256)
    failed = [r for r in records if r.state is TrialState.FAILED]
    assert [r.arch for r in failed] == [bad]
    assert "toy failure" in failed[0].error
    assert failed[0].attempts == 2  # retried once (the default), then told to the strategy
    assert len(records) == 256


def test_retries_are_bounded_and_the_strategy_hears_only_the_final_outcome() -> None:
    space = build_space(SPACE)
    bad = space.decode([0, 0, 0, 0]).to_str()
    strategy = STRATEGIES.create("random", space=space, seed=0)
    told: list[tuple[str, bool]] = []
    tell = strategy.tell
    strategy.tell = lambda item, result: (  # type: ignore[method-assign]
        told.append((as_proposal(item).arch.to_str(), result.ok)), tell(item, result))
    exp = Experiment(SPACE, Spec("toy", {"fail_on": [bad]}), strategy, max_retries=3)
    records = exp.run(n_trials=256)
    assert [r.attempts for r in records if r.arch == bad] == [4]
    assert told.count((bad, False)) == 1 and len(told) == 256


@pytest.mark.slow
def test_process_pool_runs_trials_in_parallel_and_keeps_them_all(tmp_path: Path) -> None:
    executor = ProcessPoolTrialExecutor(workers=2)
    estimator = Spec("toy", {"delay": 0.05})
    exp = experiment(SQLiteStorage(tmp_path / "p.db"), "evolution", executor=executor,
                     estimator=estimator)
    records = exp.run(n_trials=16)
    exp.close()
    assert [r.number for r in records] == list(range(16))
    assert len({r.arch for r in records}) == 16
    assert all(r.state is TrialState.COMPLETE for r in records)
    spans = sorted((r.started_at, r.finished_at) for r in records)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), "no two trials overlapped"


@pytest.mark.slow
def test_a_dead_pool_worker_fails_its_attempt_and_the_retry_finishes_the_run(
        tmp_path: Path) -> None:
    space = build_space(SPACE)
    victims = [space.decode(c).to_str() for c in ([1, 1, 1, 1], [2, 2, 2, 2])]
    estimator = Spec("toy", {"delay": 0.02, "die_once_on": victims, "marker_dir": str(tmp_path)})
    strategy = STRATEGIES.create("grid", space=space, seed=0) \
        if "grid" in STRATEGIES.names() else STRATEGIES.create("random", space=space, seed=0)
    exp = Experiment(SPACE, estimator, strategy, SQLiteStorage(tmp_path / "d.db"),
                     ProcessPoolTrialExecutor(workers=2), max_retries=2)
    records = exp.run(n_trials=256)  # the whole space: both victims are proposed
    exp.close()
    assert [r.number for r in records] == list(range(256))
    assert len({r.arch for r in records}) == 256  # none twice
    assert all(r.state is TrialState.COMPLETE for r in records)
    retried = {r.arch: r for r in records if r.attempts > 1}
    assert set(victims) <= set(retried)  # (a trial beside a victim may have died with it)
    assert all("worker lost" in r.error for r in retried.values())
