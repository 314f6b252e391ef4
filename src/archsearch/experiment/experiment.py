"""The loop that wires a strategy, an estimator, a store and an executor: ask -> submit -> tell.

While the executor has room and the budget allows, ask the strategy for an architecture, store
it as a running trial and submit it; as each trial finishes, tell the strategy, then store the
result and the strategy's new state in one transaction.

Resume is exact. The checkpoint records the strategy's state after its last ``tell`` and how
many trials it had proposed by then. On reopening, trials proposed before that point and still
``running`` are already pending in the restored strategy, so they are simply re-submitted;
trials proposed after it are re-asked in order (a seeded strategy proposes them again) and
re-run. No finished trial is lost or run twice. The re-submitted trials' results are taken
before anything new is proposed, as in the run that was interrupted.

Budgets: a strategy may propose an architecture with a budget (a fidelity, e.g. epochs); the
budget goes to the estimator (overriding the experiment's default ``budget``), into the stored
row, and back to ``tell``. A strategy may also answer WAIT ("nothing now"): the experiment then
waits for a running trial to finish and asks again; only ``None`` ends the search.

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

from archsearch.checkpoint_io import read_checkpoint
from archsearch.experiment.executor import Executor, InlineExecutor
from archsearch.experiment.storage import MemoryStorage, Storage
from archsearch.experiment.trial import TrialTask, build_space
from archsearch.registry import Spec
from archsearch.strategies.base import WAIT, Proposal, Strategy, as_proposal, proposal_key
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
        self._in_flight: dict[Future[Result], tuple[int, Proposal]] = {}
        self._failures: dict[int, int] = {}  # trial number -> failed attempts in this session
        self._resubmit: list[tuple[int, Proposal]] = []
        self._restore()

    # ---- resume ---------------------------------------------------------------------------

    def _restore(self) -> None:
        checkpoint = self.storage.load_checkpoint()
        if checkpoint is not None:
            self.n_asked, blob = checkpoint
            state = read_checkpoint(io.BytesIO(blob), "the run's strategy checkpoint",
                                    "restore the run's trials.db from a copy, or start a new "
                                    "run")
            self.strategy.load_state_dict(state)
        records = self.storage.trials()
        for record in records:
            if record.state is not TrialState.RUNNING:
                continue
            if record.number < self.n_asked:  # the restored strategy knows it as pending
                proposal = Proposal(self.space.parse(record.arch), record.budget)
                self._resubmit.append((record.number, proposal))
                continue
            # proposed after the checkpoint: ask again, in order (seeded: the same proposal)
            item = self.strategy.ask()
            if item is None or item is WAIT:
                break
            proposal = as_proposal(item)  # type: ignore[arg-type]
            if proposal.key() != proposal_key(record.arch, record.budget):
                log.warning("trial %d: re-asked %s, was %s", record.number, proposal.key(),
                            proposal_key(record.arch, record.budget))
            self.n_asked = record.number + 1
            self._resubmit.append((record.number, proposal))
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
        exhausted = waiting = False

        def may_ask() -> bool:
            if exhausted:
                return False
            if n_trials is not None and self.n_asked >= n_trials:
                return False
            return time_limit is None or time.monotonic() - start < time_limit

        try:
            # trials that were in flight at a crash: their results come before any new proposal,
            # as they would have had the run gone on (a strategy asked between them would
            # propose with less information than it had in the uninterrupted run)
            drain = bool(self._resubmit)
            for number, proposal in self._resubmit:
                self._submit(number, proposal)
            self._resubmit = []
            while True:
                waiting = False
                while (not drain and len(self._in_flight) < self.executor.capacity
                       and may_ask()):
                    item = self.strategy.ask()
                    if item is None:
                        exhausted = True
                        break
                    if item is WAIT:  # nothing now: wait for a running trial, then ask again
                        waiting = True
                        break
                    self.n_asked += 1
                    self._submit(self.n_asked - 1, as_proposal(item))  # type: ignore[arg-type]
                if not self._in_flight:
                    if waiting:
                        raise RuntimeError(
                            f"{type(self.strategy).__name__} waits for a result while no trial "
                            "is running: a strategy may answer WAIT only with proposals pending")
                    break
                done, _ = wait(list(self._in_flight), return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: self._in_flight[f][0]):
                    number, proposal = self._in_flight.pop(future)
                    result = outcome(future)
                    if not result.ok and self._failures.get(number, 0) < self.max_retries:
                        self._failures[number] = self._failures.get(number, 0) + 1
                        log.warning("trial %d failed (attempt %d), retrying: %s", number,
                                    self._failures[number], result.error)
                        self._submit(number, proposal, note=f"attempt {self._failures[number]} "
                                     f"failed: {result.error}")
                        continue
                    self._finish(number, proposal, result, on_trial)
                drain = False
        except BaseException:
            self.executor.shutdown(cancel=True)
            raise
        return self.storage.trials()

    def _submit(self, number: int, proposal: Proposal, note: str | None = None) -> None:
        arch = proposal.arch.to_str()
        self.storage.start_trial(number, arch, note, proposal.budget)
        budget = proposal.budget if proposal.budget is not None else self.budget
        task = TrialTask(number, self.space_spec, self.estimator_spec, arch, budget)
        self._in_flight[self.executor.submit(task)] = (number, proposal)

    def _finish(self, number: int, proposal: Proposal, result: Result,
                on_trial: Callable[[TrialRecord], None] | None) -> None:
        self.strategy.tell(proposal, result)
        checkpoint = None
        if getattr(self.storage, "wants_checkpoints", True):
            buffer = io.BytesIO()
            torch.save(self.strategy.state_dict(), buffer)
            checkpoint = buffer.getvalue()
        # n_asked counts every proposal the saved strategy state has seen
        self.storage.finish_trial(number, result, checkpoint, self.n_asked)
        if on_trial is not None:
            objective = result.objective if result.ok else None
            on_trial(TrialRecord(number, proposal.arch.to_str(), result.state, objective,
                                 dict(result.metrics), result.error, None, time.time(),
                                 budget=proposal.budget, cost_seconds=result.cost_seconds))

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
