"""Where a run's trials live: an SQLite file per run (``RUN/trials.db``), or memory.

One row per trial (architecture string, budget, state, objective, metrics, cost, timings,
attempts) and one checkpoint row (the strategy's state and how many trials it has proposed). A trial's result and
the checkpoint that follows it are written in one transaction, so a run killed at any instant
reopens consistent: finished trials are kept, and trials left ``running`` are re-run on resume.

Schema versions: 1 (the first wave: no ``budget`` or ``cost_seconds`` column) is upgraded in
place when opened for writing (and read as is otherwise); a file of a newer version than this
code knows is refused, saying so.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any, Protocol

from archsearch.errors import UserError
from archsearch.types import Budget, Result, TrialRecord, TrialState

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    number      INTEGER PRIMARY KEY,
    arch        TEXT NOT NULL,
    state       TEXT NOT NULL,
    objective   REAL,
    metrics     TEXT NOT NULL DEFAULT '{}',
    error       TEXT,
    started_at  REAL,
    finished_at REAL,
    attempts    INTEGER NOT NULL DEFAULT 1,
    budget      TEXT,
    cost_seconds REAL
);
CREATE TABLE IF NOT EXISTS checkpoint (
    id      INTEGER PRIMARY KEY CHECK (id = 0),
    n_asked INTEGER NOT NULL,
    state   BLOB NOT NULL
);
"""


class Storage(Protocol):
    """The five things an experiment needs from its store."""

    def get_meta(self, key: str) -> Any: ...
    def set_meta(self, key: str, value: Any) -> None: ...
    def start_trial(self, number: int, arch: str, note: str | None = None,
                    budget: Budget | None = None) -> None: ...
    def finish_trial(self, number: int, result: Result, checkpoint: bytes | None,
                     n_asked: int) -> None: ...
    def trials(self) -> list[TrialRecord]: ...
    def load_checkpoint(self) -> tuple[int, bytes] | None: ...


class SQLiteStorage:
    """An SQLite database in WAL mode; each write is one transaction.

    ``readonly=True`` opens an existing run without writing anything (``archsearch show``),
    refusing a file that is not a run's database.
    """

    wants_checkpoints = True

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        try:
            self._open(readonly)
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path} is damaged or is not an archsearch run database "
                            f"({exc}); restore it from a copy, or start a new run") from None

    def _open(self, readonly: bool) -> None:
        if readonly:
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                      isolation_level=None, timeout=30)
            self.version = self._check_readable()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        fresh = not self._tables()
        self.db.executescript(SCHEMA)
        self.version = SCHEMA_VERSION if fresh else self._upgrade()
        if fresh:
            self.set_meta("schema", SCHEMA_VERSION)

    def _tables(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def _columns(self) -> set[str]:
        return {r[1] for r in self.db.execute("PRAGMA table_info(trials)")}

    def _stored_version(self) -> int:
        version = self.get_meta("schema") or 1  # the first wave wrote no version
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise UserError(f"{self.path}: written by a newer archsearch (run schema {version}; "
                            f"this version reads up to {SCHEMA_VERSION}): upgrade archsearch")
        return version

    def _check_readable(self) -> int:
        if not {"meta", "trials", "checkpoint"} <= self._tables():
            raise UserError(f"{self.path} is not an archsearch run database")
        return self._stored_version()

    def _upgrade(self) -> int:
        """Bring a schema-1 file up to date in place (two added columns, nothing rewritten)."""
        self._stored_version()  # refuses a newer one
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            have = self._columns()
            for column, kind in (("budget", "TEXT"), ("cost_seconds", "REAL")):
                if column not in have:
                    self.db.execute(f"ALTER TABLE trials ADD COLUMN {column} {kind}")
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)",
                            (json.dumps(SCHEMA_VERSION),))
        return SCHEMA_VERSION

    def close(self) -> None:
        self.db.close()

    def get_meta(self, key: str) -> Any:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else json.loads(row[0])
        except (sqlite3.DatabaseError, json.JSONDecodeError) as exc:
            raise UserError(f"{self.path}: its stored {key!r} is damaged ({exc}); restore the "
                            "file from a copy, or start a new run") from None

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

    def start_trial(self, number: int, arch: str, note: str | None = None,
                    budget: Budget | None = None) -> None:
        """Store the trial as running (again: one more attempt; ``note``: why, e.g. the
        previous attempt's error, kept in ``error`` until the trial finishes)."""
        budget_json = None if budget is None else json.dumps(budget.to_json())
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO trials (number, arch, state, started_at, error, budget) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(number) DO UPDATE SET arch = excluded.arch, state = excluded.state,"
                " started_at = excluded.started_at, attempts = attempts + 1,"
                " error = coalesce(excluded.error, error), budget = excluded.budget",
                (number, arch, TrialState.RUNNING.value, time.time(), note, budget_json),
            )

    def finish_trial(self, number: int, result: Result, checkpoint: bytes | None,
                     n_asked: int) -> None:
        objective = None if math.isnan(result.objective) else result.objective
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            # a retried trial that succeeds keeps its earlier attempt's error as history
            self.db.execute(
                "UPDATE trials SET state = ?, objective = ?, metrics = ?, "
                "error = coalesce(?, error), finished_at = ?, cost_seconds = ? WHERE number = ?",
                (result.state.value, objective, json.dumps(dict(result.metrics)), result.error,
                 time.time(), result.cost_seconds, number),
            )
            if checkpoint is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO checkpoint (id, n_asked, state) VALUES (0, ?, ?)",
                    (n_asked, checkpoint),
                )

    def trials(self) -> list[TrialRecord]:
        try:
            return self._trials()
        except (sqlite3.DatabaseError, json.JSONDecodeError, ValueError) as exc:
            raise UserError(f"{self.path}: its trial table is damaged ({exc}); restore the "
                            "file from a copy, or start a new run") from None

    def _trials(self) -> list[TrialRecord]:
        extra = ", budget, cost_seconds" if self.version >= 2 else ", NULL, NULL"
        rows = self.db.execute(
            "SELECT number, arch, state, objective, metrics, error, started_at, finished_at, "
            f"attempts{extra} FROM trials ORDER BY number"
        ).fetchall()
        return [
            TrialRecord(n, a, TrialState(s), o, json.loads(m), e, t0, t1, k,
                        Budget.from_json(None if b is None else json.loads(b)), c)
            for n, a, s, o, m, e, t0, t1, k, b, c in rows
        ]

    def load_checkpoint(self) -> tuple[int, bytes] | None:
        row = self.db.execute("SELECT n_asked, state FROM checkpoint WHERE id = 0").fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))


class MemoryStorage:
    """Trials in a dict; no checkpoints (nothing survives the process anyway)."""

    wants_checkpoints = False

    def __init__(self) -> None:
        self.meta: dict[str, Any] = {}
        self.rows: dict[int, TrialRecord] = {}

    def close(self) -> None:
        pass

    def get_meta(self, key: str) -> Any:
        return self.meta.get(key)

    def set_meta(self, key: str, value: Any) -> None:
        self.meta[key] = value

    def start_trial(self, number: int, arch: str, note: str | None = None,
                    budget: Budget | None = None) -> None:
        old = self.rows.get(number)
        attempts = old.attempts + 1 if old is not None else 1
        error = note if note is not None or old is None else old.error
        self.rows[number] = TrialRecord(number, arch, TrialState.RUNNING, error=error,
                                        started_at=time.time(), attempts=attempts,
                                        budget=budget)

    def finish_trial(self, number: int, result: Result, checkpoint: bytes | None,
                     n_asked: int) -> None:
        old = self.rows[number]
        objective = None if math.isnan(result.objective) else result.objective
        self.rows[number] = TrialRecord(
            number, old.arch, result.state, objective, dict(result.metrics),
            result.error if result.error is not None else old.error, old.started_at, time.time(),
            old.attempts, old.budget, result.cost_seconds,
        )

    def trials(self) -> list[TrialRecord]:
        return [self.rows[k] for k in sorted(self.rows)]

    def load_checkpoint(self) -> tuple[int, bytes] | None:
        return None
