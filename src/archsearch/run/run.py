"""A run: one search in one folder, from its configuration to its honest final report.

::

    run = Run.create("runs/enas", RunConfig(method="enas", epochs=10))   # or Run.resume(folder)
    best = run.search()            # the search (resumable: stop it, resume the folder)
    rows = run.final()             # best and K random architectures retrained alike
    run.close()

``create`` resolves and checks the whole configuration and builds what reads data or tables
before the folder exists, so a mistake leaves nothing behind; then it takes the folder's lock
and writes the resolved ``config.toml``. ``resume`` reopens a folder (its lock, its stored
configuration; a different configuration is refused with the differences listed, except the
runtime options ``trials``, ``time``, ``retries``). ``search`` runs the method: a trials method
through the experiment loop, a one-shot method through its loop (SPOS then its evolution
phase). Library code reports progress through callbacks and logs; it never prints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archsearch.errors import UserError
from archsearch.experiment.storage import SQLiteStorage
from archsearch.run import build
from archsearch.run.config import RunConfig, differences, from_sections, resolve, to_toml
from archsearch.run.folder import CONFIG_NAME, DB_NAME, FolderLock, checked_folder
from archsearch.types import TrialRecord, TrialState

log = logging.getLogger(__name__)
Progress = Callable[[str, dict[str, Any]], None]  # (event, fields): "start", "step", "end"


class Run:
    def __init__(self, folder: Path, resolved: dict[str, Any], storage: SQLiteStorage,
                 lock: FolderLock, resumed: bool) -> None:
        self.folder, self.resolved, self.storage = folder, resolved, storage
        self.lock, self.resumed = lock, resumed
        self.method = build.method_of(resolved)

    # ---- opening -----------------------------------------------------------------------------

    @classmethod
    def create(cls, folder: str | Path, config: RunConfig) -> Run:
        path = checked_folder(folder, must_exist=False)
        taken = (f"run folder {str(folder)!r} already holds a run; resume it (--resume), or "
                 "choose another --run")
        if (path / DB_NAME).exists():
            raise UserError(taken)
        resolved = resolve(config)
        build.check_buildable(resolved)  # data, tables, proxies: fail before the folder exists
        lock = FolderLock(path).acquire()
        try:
            if (path / DB_NAME).exists():  # made by another process while this one checked
                raise UserError(taken)
            storage = SQLiteStorage(path / DB_NAME)
            storage.set_meta("config", resolved)
            build.record_inputs(resolved, storage)
            (path / CONFIG_NAME).write_text(to_toml(resolved))
        except BaseException:
            lock.release()
            raise
        return cls(path, resolved, storage, lock, resumed=False)

    @classmethod
    def resume(cls, folder: str | Path, given: dict[str, Any] | None = None) -> Run:
        """Reopen ``folder``. ``given`` (RunConfig fields the user set now) must resolve to the
        stored configuration, the runtime options (trials, time, retries) aside."""
        path = checked_folder(folder, must_exist=True)
        lock = FolderLock(path).acquire()
        try:
            storage = SQLiteStorage(path / DB_NAME)
            stored = storage.get_meta("config")
            if not isinstance(stored, dict) or "run" not in stored:
                raise UserError(
                    f"{path / DB_NAME} holds no run configuration this version can resume "
                    "(an emptied or damaged file, or a first-wave run); start a new --run")
            resolved = cls._reconcile(stored, given or {})
            build.check_inputs(resolved, storage)
        except BaseException:
            lock.release()
            raise
        return cls(path, resolved, storage, lock, resumed=True)

    @staticmethod
    def _reconcile(stored: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
        """The stored configuration with what the user gave now laid over it; a change of
        anything but the runtime options is refused, listing the differences."""
        merged = from_sections(stored, "the stored configuration").to_dict()
        renamed = [f"  run.{k}: run has {merged[k]!r}, now {given[k]!r}"
                   for k in ("method", "space", "estimator", "final_estimator")
                   if given.get(k) is not None and given[k] != merged[k]]
        if renamed:  # another component: its options would not even apply
            raise UserError("--resume with a different configuration; the differences:\n"
                            + "\n".join(renamed) + "\nresume without these options, or start "
                            "a new --run")
        for key, value in given.items():
            merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
        new = resolve(RunConfig.from_options(merged))
        diff = differences(stored, new)
        if diff and all("run has '(unset)'" in d for d in diff):  # options added since
            log.warning("the run's configuration lacks options this version has; their "
                        "defaults apply:\n%s", "\n".join(diff))
            stored, diff = new, []
        if diff:
            raise UserError("--resume with a different configuration; the differences:\n"
                            + "\n".join(diff) + "\nresume without these options, or start a "
                            "new --run")
        runtime = {k: new["run"][k] for k in ("trials", "time", "retries")}
        return {**stored, "run": {**stored["run"], **runtime}}

    def close(self) -> None:
        self.storage.close()
        self.lock.release()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- searching ---------------------------------------------------------------------------

    def search(self, progress: Progress | None = None, executor: Any = None) -> str | None:
        """Run (or continue) the search; the best architecture's string (None: none found).
        ``executor`` runs a trials method's trials (default: in this process)."""
        start = time.perf_counter()
        if self.method.kind == "loop":
            best = build.search_oneshot(self, progress, executor)
        else:
            best = build.search_trials(self, progress, executor)
        self.storage.set_meta("search_seconds",
                              (self.storage.get_meta("search_seconds") or 0.0)
                              + time.perf_counter() - start)
        if best is not None:
            self.storage.set_meta("best_arch", best)
        return best

    def trials(self) -> list[TrialRecord]:
        return self.storage.trials()

    def epochs(self) -> list[dict[str, Any]]:
        """The one-shot loop's per-epoch records (empty for trials methods)."""
        return list(self.storage.get_meta("epochs") or [])

    def best(self) -> str | None:
        return self.storage.get_meta("best_arch")

    def counts(self) -> dict[str, int]:
        records = self.trials()
        return {s.value: sum(r.state is s for r in records) for s in TrialState}

    # ---- the final protocol -----------------------------------------------------------------

    def final(self, progress: Progress | None = None,
              final: dict[str, Any] | None = None, k: int | None = None) -> dict[str, Any]:
        """The best architecture and ``k`` random ones (default: the run's baseline_random)
        retrained under the final protocol (``final``: the resolved final section, default the
        run's); computed once per (best, k, protocol) and kept in the run."""
        best = self.best()
        if best is None:
            raise UserError(f"run {str(self.folder)!r} has no architecture yet (its search "
                            "did not finish)")
        final = final if final is not None else self.resolved["final"]
        k = int(self.resolved["run"]["baseline_random"] if k is None else k)
        key = {"best": best, "k": k, "final": final}
        stored = self.storage.get_meta("final")
        if stored is not None and stored.get("key") == key:
            return stored["rows"]
        rows = build.final_rows(self, best, k, final, progress)
        self.storage.set_meta("final", {"key": key, "rows": rows})
        return rows
