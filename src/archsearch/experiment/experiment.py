"""The loop that wires a strategy, an estimator, a store and an executor: ask -> submit -> tell.

While the executor has room and the budget allows, ask the strategy for an architecture, store
it as a running trial and submit it; as each trial finishes, tell the strategy, then store the
result and the strategy's new state in one transaction.

Resume is exact. The checkpoint records the strategy's state after its last ``tell`` and how
many trials it had proposed by then. On reopening, trials proposed before that point and still
``running`` are already pending in the restored strategy, so they are simply re-submitted;
trials proposed after it are re-asked in order (a seeded strategy proposes them again) and
re-run. No finished trial is lost or run twice.

Faults: a trial that raises, or whose worker process dies (a crashed pool worker, a lost Ray
worker or node), comes back as a failed attempt. It is retried under the same number up to
``max_retries`` times (the row keeps ``attempts`` and the last attempt's error); only its final
outcome is told to the strategy, so the experiment always finishes.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait

import torch

from archsearch.experiment.executor import Executor, InlineExecutor
from archsearch.experiment.storage import MemoryStorage, Storage
from archsearch.experiment.trial import TrialTask, build_space
from archsearch.registry import Spec
from archsearch.spaces.base import Architecture
from archsearch.strategies.base import Strategy
from archsearch.types import Budget, Result, TrialRecord, TrialState

log = logging.getLogger(__name__)


class Experiment:
    def __init__(
        self, space: Spec, estimator: Spec, strategy: Strategy, storage: Storage | None = None,
        executor: Executor | None = None, budget: Budget | None = None, max_retries: int = 1,
    ) -> None:
        self.space_spec, self.estimator_spec = space, estimator
        self.space = build_space(space)
        self.strategy = strategy
        self.storage = storage if storage is not None else MemoryStorage()
        self.executor = executor if executor is not None else InlineExecutor()
        self.budget = budget
        self.max_retries = max_retries
        self.n_asked = 0
        self._in_flight: dict[Future[Result], tuple[int, Architecture]] = {}
        self._failures: dict[int, int] = {}  # trial number -> failed attempts in this session
        self._resubmit: list[tuple[int, Architecture]] = []
        self._restore()

    # ---- resume ---------------------------------------------------------------------------

    def _restore(self) -> None:
        checkpoint = self.storage.load_checkpoint()
        if checkpoint is not None:
            self.n_asked, blob = checkpoint
            self.strategy.load_state_dict(torch.load(io.BytesIO(blob), weights_only=True))
        records = self.storage.trials()
        for record in records:
            if record.state is not TrialState.RUNNING:
                continue
            if record.number < self.n_asked:  # the restored strategy knows it as pending
                self._resubmit.append((record.number, self.space.parse(record.arch)))
                continue
            # proposed after the checkpoint: ask again, in order (seeded: the same proposal)
            arch = self.strategy.ask()
            if arch is None:
                break
            if arch.to_str() != record.arch:
                log.warning("trial %d: re-asked %s, was %s", record.number, arch, record.arch)
            self.n_asked = record.number + 1
            self._resubmit.append((record.number, arch))
        finished = [r for r in records if r.state is not TrialState.RUNNING]
        if checkpoint is None and finished:
            raise RuntimeError("storage holds finished trials but no strategy checkpoint")
        self.n_asked = max([self.n_asked] + [r.number + 1 for r in finished])

    # ---- the loop -------------------------------------------------------------------------

    def run(
        self, n_trials: int | None = None, time_limit: float | None = None,
        on_trial: Callable[[TrialRecord], None] | None = None,
    ) -> list[TrialRecord]:
        """Run until ``n_trials`` trials exist (counting earlier sessions), ``time_limit``
        seconds have passed in this call, or the strategy has nothing more to propose."""
        start = time.monotonic()
        exhausted = False

        def may_ask() -> bool:
            if exhausted:
                return False
            if n_trials is not None and self.n_asked >= n_trials:
                return False
            return time_limit is None or time.monotonic() - start < time_limit

        try:
            for number, arch in self._resubmit:
                self._submit(number, arch)
            self._resubmit = []
            while True:
                while len(self._in_flight) < self.executor.capacity and may_ask():
                    arch = self.strategy.ask()
                    if arch is None:
                        exhausted = True
                        break
                    self.n_asked += 1
                    self._submit(self.n_asked - 1, arch)
                if not self._in_flight:
                    break
                done, _ = wait(list(self._in_flight), return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: self._in_flight[f][0]):
                    number, arch = self._in_flight.pop(future)
                    result = outcome(future)
                    if not result.ok and self._failures.get(number, 0) < self.max_retries:
                        self._failures[number] = self._failures.get(number, 0) + 1
                        log.warning("trial %d failed (attempt %d), retrying: %s", number,
                                    self._failures[number], result.error)
                        self._submit(number, arch, note=f"attempt {self._failures[number]} "
                                     f"failed: {result.error}")
                        continue
                    self._finish(number, arch, result, on_trial)
        except BaseException:
            self.executor.shutdown(cancel=True)
            raise
        return self.storage.trials()

    def _submit(self, number: int, arch: Architecture, note: str | None = None) -> None:
        self.storage.start_trial(number, arch.to_str(), note)
        task = TrialTask(number, self.space_spec, self.estimator_spec, arch.to_str(), self.budget)
        self._in_flight[self.executor.submit(task)] = (number, arch)

    def _finish(self, number: int, arch: Architecture, result: Result,
                on_trial: Callable[[TrialRecord], None] | None) -> None:
        self.strategy.tell(arch, result)
        checkpoint = None
        if getattr(self.storage, "wants_checkpoints", True):
            buffer = io.BytesIO()
            torch.save(self.strategy.state_dict(), buffer)
            checkpoint = buffer.getvalue()
        # n_asked counts every proposal the saved strategy state has seen
        self.storage.finish_trial(number, result, checkpoint, self.n_asked)
        if on_trial is not None:
            objective = result.objective if result.ok else None
            on_trial(TrialRecord(number, arch.to_str(), result.state, objective,
                                 dict(result.metrics), result.error, None, time.time()))

    def close(self) -> None:
        self.executor.shutdown()
        self.storage.close()


def outcome(future: Future[Result]) -> Result:
    """The future's Result; a worker that died (or any executor error) is a failed Result."""
    try:
        return future.result()
    except Exception as exc:
        return Result.failed(f"worker lost: {type(exc).__name__}: {exc}".strip())


def best_trial(records: list[TrialRecord]) -> TrialRecord | None:
    done = [r for r in records if r.state is TrialState.COMPLETE and r.objective is not None]
    return max(done, key=lambda r: r.objective) if done else None
