"""Per-trial budgets through storage and the experiment: the budget and the estimator's cost
are stored per row, first-wave run files are upgraded in place, newer ones refused, a
read-only open writes nothing; a strategy that waits with nothing running is an error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from archsearch.errors import UserError
from archsearch.experiment.experiment import Experiment
from archsearch.experiment.storage import SCHEMA_VERSION, SQLiteStorage
from archsearch.registry import Spec
from archsearch.strategies.base import WAIT, Proposal, Strategy
from archsearch.testing import ToySpace
from archsearch.types import Budget, Result, TrialState

# the first wave's schema (version 1): no budget or cost column, no schema version
FIRST_WAVE = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (number INTEGER PRIMARY KEY, arch TEXT NOT NULL, state TEXT NOT NULL,
    objective REAL, metrics TEXT NOT NULL DEFAULT '{}', error TEXT, started_at REAL,
    finished_at REAL, attempts INTEGER NOT NULL DEFAULT 1);
CREATE TABLE checkpoint (id INTEGER PRIMARY KEY CHECK (id = 0), n_asked INTEGER NOT NULL,
    state BLOB NOT NULL);
INSERT INTO trials VALUES (0, 'toy:1-2', 'complete', 1.5, '{"score": 1.5}', NULL, 1.0, 2.0, 1);
"""


def test_budget_and_cost_are_stored_per_row(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "trials.db")
    storage.start_trial(0, "toy:1-2", budget=Budget(epochs=9))
    storage.finish_trial(0, Result(0.5, {"a": 1.0}, cost_seconds=12.5), b"state", 1)
    storage.start_trial(1, "toy:1-2")
    storage.close()
    rows = SQLiteStorage(tmp_path / "trials.db").trials()
    assert (rows[0].budget, rows[0].cost_seconds) == (Budget(epochs=9), 12.5)
    assert (rows[1].budget, rows[1].state) == (None, TrialState.RUNNING)


def test_a_first_wave_run_file_opens_and_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "trials.db"
    sqlite3.connect(path).executescript(FIRST_WAVE)
    readonly = SQLiteStorage(path, readonly=True)  # read as it is
    assert [(r.arch, r.objective, r.budget) for r in readonly.trials()] == [("toy:1-2", 1.5, None)]
    readonly.close()
    storage = SQLiteStorage(path)
    assert storage.get_meta("schema") == SCHEMA_VERSION
    assert storage.trials()[0].metrics == {"score": 1.5}
    storage.start_trial(1, "toy:0-0", budget=Budget(epochs=3))
    assert storage.trials()[1].budget == Budget(epochs=3)


def test_a_newer_run_file_is_refused_saying_why(tmp_path: Path) -> None:
    path = tmp_path / "trials.db"
    SQLiteStorage(path).set_meta("schema", SCHEMA_VERSION + 1)
    for readonly in (False, True):
        with pytest.raises(UserError, match="newer archsearch"):
            SQLiteStorage(path, readonly=readonly)


def test_read_only_open_writes_nothing_and_refuses_other_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="not an archsearch run"):
        SQLiteStorage(empty, readonly=True)
    assert empty.read_bytes() == b""  # no schema written into it
    text = tmp_path / "notes.db"
    text.write_text("not a database")
    with pytest.raises((UserError, sqlite3.DatabaseError)):
        SQLiteStorage(text, readonly=True)
    assert text.read_text() == "not a database"


class WaitsForever(Strategy):
    """Proposes one architecture, then waits even when nothing is pending: a bug."""

    def suggest(self):  # type: ignore[no-untyped-def]
        arch = self.space.decode([0, 0])
        return Proposal(arch, Budget(epochs=2)) if self.propose(arch, Budget(epochs=2)) else WAIT

    def observe(self, proposal: Proposal, result: Result) -> None:
        pass


def test_waiting_with_nothing_running_is_an_error_not_the_end() -> None:
    space = ToySpace(2, 2)
    experiment = Experiment(Spec("toy", {"n_decisions": 2, "n_options": 2}), Spec("toy"),
                            WaitsForever(space))
    with pytest.raises(RuntimeError, match="waits for a result while no trial is running"):
        experiment.run(n_trials=5)
    rows = experiment.storage.trials()  # the one trial it proposed ran and was kept
    assert [(r.budget, r.state, r.metrics["epochs"]) for r in rows] == [
        (Budget(epochs=2), TrialState.COMPLETE, 2)]


def test_deduplication_keys_on_architecture_and_budget() -> None:
    strategy = WaitsForever(ToySpace(2, 2))
    arch = strategy.space.decode([1, 0])
    assert strategy.propose(arch) and not strategy.propose(arch)
    assert strategy.propose(arch, Budget(epochs=3)) and not strategy.propose(arch, Budget(epochs=3))
    assert strategy.propose(arch, Budget(epochs=9))


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"epochs": float("inf")}, {"steps": 0},
                                 {"steps": 1.5}, {"fraction": 0}, {"fraction": 1.5}])
def test_impossible_budgets_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Budget(**bad)
    assert Budget.from_json({}) is None and Budget(epochs=2.5).key() == "epochs=2.5"
