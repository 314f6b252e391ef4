"""Both stores (in memory, SQLite) keep the same things of a trial: its metrics, its times, a
failed attempt's note while retried, the final error, no objective for a failure, the meta."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from archsearch.experiment import MemoryStorage, SQLiteStorage
from archsearch.types import Result, TrialState


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "memory":
        return MemoryStorage()
    # a run folder whose parents do not exist yet
    return SQLiteStorage(tmp_path / "a" / "b" / "trials.db")


def test_a_finished_trial_keeps_its_metrics_and_times(storage) -> None:  # type: ignore[no-untyped-def]
    before = time.time()
    storage.start_trial(0, "toy:1-2")
    storage.finish_trial(0, Result(0.5, {"val_acc": 0.5, "params_m": 1.25}, 3.0), b"x", 1)
    (row,) = storage.trials()
    assert (row.state, row.objective, dict(row.metrics)) == (
        TrialState.COMPLETE, 0.5, {"val_acc": 0.5, "params_m": 1.25})
    assert row.cost_seconds == 3.0 and row.error is None and row.attempts == 1
    assert before <= row.started_at <= row.finished_at <= time.time()


def test_a_retried_trial_keeps_the_note_until_its_final_outcome(storage) -> None:  # type: ignore[no-untyped-def]
    storage.start_trial(0, "toy:1-2")
    storage.start_trial(0, "toy:1-2", note="attempt 1 failed: boom")
    (row,) = storage.trials()
    assert (row.state, row.attempts, row.error) == (TrialState.RUNNING, 2, "attempt 1 failed: boom")
    storage.start_trial(0, "toy:1-2")  # a third attempt without a note keeps the last note
    assert storage.trials()[0].error == "attempt 1 failed: boom"
    storage.finish_trial(0, Result(0.75), None, 1)  # success: the history stays
    assert storage.trials()[0].error == "attempt 1 failed: boom"


def test_a_failure_stores_its_error_and_no_objective(storage) -> None:  # type: ignore[no-untyped-def]
    storage.start_trial(0, "toy:1-2", note="attempt 1 failed: a")
    storage.finish_trial(0, Result.failed("b: the final reason"), None, 1)
    (row,) = storage.trials()
    assert row.state is TrialState.FAILED and row.objective is None
    assert row.error == "b: the final reason"
    assert not math.isnan(row.cost_seconds or 0.0)


def test_meta_values_round_trip(storage) -> None:  # type: ignore[no-untyped-def]
    storage.set_meta("config", {"seed": 3, "nested": [1, 2]})
    assert storage.get_meta("config") == {"seed": 3, "nested": [1, 2]}
    assert storage.get_meta("missing") is None
