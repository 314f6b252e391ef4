"""Where trials run: inline (in this process, one at a time), a local process pool, or a Ray
cluster (``ray_executor.py``, the optional extra ``archsearch[ray]``).

An executor takes a :class:`TrialTask` and returns a future of its Result; ``capacity`` is how
many trials it runs at once. A future that raises (its worker died) is a failed attempt for the
experiment, which retries it; the executor itself must stay usable afterwards.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

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
        self.threads_per_worker = threads_per_worker
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.capacity,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.threads_per_worker, os.getpid()),
        )

    def submit(self, task: TrialTask) -> Future[Result]:
        try:
            return self.pool.submit(run_trial, task)
        except BrokenProcessPool:  # a worker died: its trials failed; start a fresh pool
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()
            return self.pool.submit(run_trial, task)

    def shutdown(self, cancel: bool = False) -> None:
        """Wait for the running trials, or (``cancel``: Ctrl-C, SIGTERM, an error) stop the
        workers at once: their trials are re-run on resume."""
        workers = list(getattr(self.pool, "_processes", {}).values()) if cancel else []
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)
        for process in workers:
            if process.is_alive():
                process.terminate()


def _init_worker(threads: int, parent: int) -> None:
    die_with_parent(parent)
    import torch

    torch.set_num_threads(threads)  # k workers x 1 thread, instead of k x all cores


def die_with_parent(parent: int) -> None:
    """Ask the kernel to send this process SIGTERM when its parent dies (Linux), so that a
    killed driver leaves no worker behind; elsewhere a no-op. A parent that died before the
    request (while this worker was starting) is no longer this process's parent: then exit."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)


EXECUTORS = ("inline", "process", "ray")


def make_executor(name: str, workers: int = 1, **options: Any) -> Executor:
    """``inline``, ``process`` (``workers`` local processes) or ``ray`` (options: ``address``,
    ``cpus_per_trial``, ``gpus_per_trial``; ``workers`` caps the trials in flight)."""
    from archsearch.errors import UnknownNameError

    if name == "inline":
        return InlineExecutor()
    if name == "process":
        return ProcessPoolTrialExecutor(workers)
    if name == "ray":
        from archsearch.experiment.ray_executor import RayExecutor

        return RayExecutor(workers=workers, **options)
    raise UnknownNameError("executor", name, list(EXECUTORS))
