"""Where trials run: inline (in this process, one at a time) or a local process pool.

An executor takes a :class:`TrialTask` and returns a future of its Result; ``capacity`` is how
many trials it runs at once. A Ray executor with the same two methods slots in beside these.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Protocol

from archsearch.experiment.trial import TrialTask, run_trial
from archsearch.types import Result


class Executor(Protocol):
    capacity: int

    def submit(self, task: TrialTask) -> Future[Result]: ...
    def shutdown(self, cancel: bool = False) -> None: ...


class InlineExecutor:
    """Runs each trial in the calling process when it is submitted."""

    capacity = 1

    def submit(self, task: TrialTask) -> Future[Result]:
        future: Future[Result] = Future()
        future.set_result(run_trial(task))
        return future

    def shutdown(self, cancel: bool = False) -> None:
        pass


class ProcessPoolTrialExecutor:
    """Runs up to ``workers`` trials at once in spawned worker processes on this machine."""

    def __init__(self, workers: int = 2, threads_per_worker: int = 1) -> None:
        self.capacity = workers
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(threads_per_worker,),
        )

    def submit(self, task: TrialTask) -> Future[Result]:
        return self.pool.submit(run_trial, task)

    def shutdown(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)  # k workers x 1 thread, instead of k x all cores


def make_executor(name: str, workers: int = 1) -> Executor:
    from archsearch.errors import UnknownNameError

    if name == "inline":
        return InlineExecutor()
    if name == "process":
        return ProcessPoolTrialExecutor(workers)
    raise UnknownNameError("executor", name, ["inline", "process"])
