"""SQLiteStorage.finish_trial writes a trial's result and the strategy checkpoint that follows
it in one transaction: a failure between the two writes leaves neither (the trial still
``running`` with no objective, the previous checkpoint intact, in this connection and in the
reopened file), and no other connection ever sees one write without the other."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from archsearch.experiment.storage import SQLiteStorage
from archsearch.types import Result, TrialState

FIRST_CHECKPOINT = b"strategy state after trial 0"
SECOND_CHECKPOINT = b"strategy state after trial 1"


class InjectedFailure(RuntimeError):
    pass


class ConnectionProxy:
    """Stands in for ``SQLiteStorage.db``: forwards everything to the real connection and
    calls ``hook(sql)`` before each statement (a hook may raise, or look at the file)."""

    def __init__(self, db: sqlite3.Connection, hook: Any) -> None:
        self._db = db
        self._hook = hook

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._hook(sql)
        return self._db.execute(sql, *args)

    def __enter__(self) -> ConnectionProxy:
        self._db.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._db.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def is_checkpoint_write(sql: str) -> bool:
    return "INTO checkpoint" in sql


def is_trial_update(sql: str) -> bool:
    return sql.lstrip().startswith("UPDATE trials")


def store_with_one_finished_trial(path: Path) -> SQLiteStorage:
    """Trial 0 finished (checkpoint FIRST_CHECKPOINT, 1 asked), trial 1 started."""
    storage = SQLiteStorage(path)
    storage.start_trial(0, "toy:0-0")
    storage.finish_trial(0, Result(1.5, {"score": 1.5}), FIRST_CHECKPOINT, 1)
    storage.start_trial(1, "toy:1-2")
    return storage


def assert_second_finish_left_no_trace(storage: SQLiteStorage) -> None:
    first, second = storage.trials()
    assert first.state is TrialState.COMPLETE and first.objective == 1.5
    assert second.number == 1 and second.arch == "toy:1-2"
    assert second.state is TrialState.RUNNING
    assert second.objective is None and dict(second.metrics) == {}
    assert second.finished_at is None
    assert storage.load_checkpoint() == (1, FIRST_CHECKPOINT)


@pytest.mark.parametrize("failing", [is_checkpoint_write, is_trial_update],
                         ids=["checkpoint-insert-fails", "trial-update-fails"])
def test_a_failure_inside_finish_trial_writes_neither_the_result_nor_the_checkpoint(
        tmp_path: Path, failing: Any) -> None:
    path = tmp_path / "trials.db"
    storage = store_with_one_finished_trial(path)

    def hook(sql: str) -> None:
        if failing(sql):
            raise InjectedFailure(sql)

    real = storage.db
    storage.db = ConnectionProxy(real, hook)  # type: ignore[assignment]
    with pytest.raises(InjectedFailure):
        storage.finish_trial(1, Result(2.0, {"score": 2.0}), SECOND_CHECKPOINT, 2)
    storage.db = real
    assert not real.in_transaction  # rolled back, not left open
    assert_second_finish_left_no_trace(storage)
    storage.close()

    reopened = SQLiteStorage(path)
    assert_second_finish_left_no_trace(reopened)
    # and the store still works: the trial can finish for real afterwards
    reopened.finish_trial(1, Result(2.0, {"score": 2.0}), SECOND_CHECKPOINT, 2)
    assert reopened.trials()[1].state is TrialState.COMPLETE
    assert reopened.load_checkpoint() == (2, SECOND_CHECKPOINT)
    reopened.close()


def test_another_connection_never_sees_the_result_without_its_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "trials.db"
    storage = store_with_one_finished_trial(path)
    reader = sqlite3.connect(path)
    seen: list[tuple[Any, ...]] = []

    def look(sql: str) -> None:
        if is_checkpoint_write(sql):  # the result is written, the checkpoint about to be
            state, objective = reader.execute(
                "SELECT state, objective FROM trials WHERE number = 1").fetchone()
            n_asked, blob = reader.execute(
                "SELECT n_asked, state FROM checkpoint WHERE id = 0").fetchone()
            seen.append((state, objective, n_asked, bytes(blob)))

    real = storage.db
    storage.db = ConnectionProxy(real, look)  # type: ignore[assignment]
    storage.finish_trial(1, Result(2.0, {"score": 2.0}), SECOND_CHECKPOINT, 2)
    storage.db = real
    assert seen == [(TrialState.RUNNING.value, None, 1, FIRST_CHECKPOINT)]
    # once finish_trial returns, both writes are visible together
    assert reader.execute("SELECT state, objective FROM trials WHERE number = 1").fetchone() \
        == (TrialState.COMPLETE.value, 2.0)
    assert reader.execute("SELECT n_asked, state FROM checkpoint").fetchall() \
        == [(2, SECOND_CHECKPOINT)]
    reader.close()
    storage.close()


def test_finish_trial_without_a_checkpoint_keeps_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "trials.db"
    storage = store_with_one_finished_trial(path)
    storage.finish_trial(1, Result.failed("boom"), None, 2)
    storage.close()
    reopened = SQLiteStorage(path)
    second = reopened.trials()[1]
    assert second.state is TrialState.FAILED and second.error == "boom"
    assert second.objective is None
    assert reopened.load_checkpoint() == (1, FIRST_CHECKPOINT)
    reopened.close()
