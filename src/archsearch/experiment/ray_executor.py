"""Trials on a Ray cluster: the executor for when a search outgrows one machine.

Each trial is one Ray task with its own resource request (``cpus_per_trial``,
``gpus_per_trial``). Only plain values cross: the task as JSON-able values (space and estimator
by name and configuration, the architecture string) out, ``Result.to_json()`` back. Ray workers
are long-lived processes, so each builds its space and estimator once and reuses them (as pool
workers do). The driver alone writes the run's SQLite store.

Ray's own task retries are off (``max_retries=0``): a worker or node that dies fails its task
with a Ray error, which the experiment records against the trial and retries itself, so that
every attempt is visible in the trial table.

``address=None`` starts a local Ray instance for the run (and stops it on shutdown);
``address="auto"`` or ``"HOST:PORT"`` joins a running cluster (``ray start --head``).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future
from typing import Any

from archsearch.errors import UserError
from archsearch.experiment.trial import TrialTask, run_trial
from archsearch.types import Result

log = logging.getLogger(__name__)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("the ray executor needs Ray: pip install 'archsearch[ray]' "
                        "(or pip install ray)") from None
    return ray


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast with a clear message (Ray itself retries an unreachable address for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot reach a Ray cluster at {address!r} ({exc}); start one with "
                        "`ray start --head` and pass the address it prints (HOST:PORT), or "
                        "leave --ray-address out to start a local one") from None


def run_trial_json(task: dict[str, Any], threads: int) -> dict[str, Any]:
    """The Ray task: plain values in, plain values out."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)  # what the task reserved, not every core of the node
    return run_trial(TrialTask.from_json(task)).to_json()


class RayExecutor:
    def __init__(self, address: str | None = None, workers: int | None = None,
                 cpus_per_trial: float = 1, gpus_per_trial: float = 0,
                 init_options: dict[str, Any] | None = None) -> None:
        ray = import_ray()
        self.ray = ray
        self.started_ray = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"log_to_driver": False, **(init_options or {})}
            if address is None:
                # a local instance for this run, sized to the trials asked for
                options.setdefault("include_dashboard", False)
                options.setdefault("num_cpus", max(1, int((workers or os.cpu_count() or 1)
                                                          * cpus_per_trial)))
            if address not in (None, "auto"):
                check_reachable(address)
            try:
                ray.init(address=address, **options)
            except ConnectionError as exc:
                raise UserError(f"cannot reach a Ray cluster at {address!r} ({exc}); start one "
                                "with `ray start --head` or leave --ray-address out") from None
            self.started_ray = True
        cluster_cpus = float(ray.cluster_resources().get("CPU", 1))
        fit = max(1, int(cluster_cpus // max(cpus_per_trial, 1e-9)))
        self.capacity = min(workers, fit) if workers else fit
        threads = max(1, int(cpus_per_trial))
        remote = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)
        self._task = remote(run_trial_json)
        self._threads = threads
        self._refs: set[Any] = set()  # tasks in flight (cancelled on an abort)
        log.info("ray executor: %d trial(s) at once on a cluster with %.0f CPUs",
                 self.capacity, cluster_cpus)

    def submit(self, task: TrialTask) -> Future[Result]:
        ref = self._task.remote(task.to_json(), self._threads)
        self._refs.add(ref)
        future: Future[Result] = Future()

        def settle(raw: Future[Any]) -> None:
            self._refs.discard(ref)
            try:
                value = raw.result()
            except Exception as exc:
                future.set_exception(exc)
                return
            future.set_result(Result.from_json(value))

        ref.future().add_done_callback(settle)
        return future

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            for ref in list(self._refs):
                try:
                    self.ray.cancel(ref, force=True)
                except Exception as exc:
                    log.debug("cancel %s: %s", ref, exc)
        self._refs = set()
        if self.started_ray:
            self.ray.shutdown()
            self.started_ray = False

