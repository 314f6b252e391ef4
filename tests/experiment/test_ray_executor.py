"""The Ray executor on a real local cluster: a head and a worker node on loopback.

Skipped when Ray is not installed (``pip install 'archsearch[ray]'``); CI installs it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from archsearch.experiment import Experiment, SQLiteStorage
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec
from archsearch.types import TrialState

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'archsearch[ray]')")
pytestmark = pytest.mark.slow

SPACE = Spec("toy", {"n_decisions": 4, "n_options": 4})


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)  # a second raylet: the worker node
    c.wait_for_nodes()
    yield c
    if ray.is_initialized():
        ray.shutdown()
    c.shutdown()


def kill_a_busy_worker(pid_dir: Path, finished: list[int], killed: list[int],
                       stop: threading.Event) -> None:
    """Once 4 trials have finished, SIGKILL the worker process of the next trial to start
    (a trial in flight: the worker that started a trial last may have finished it already)."""
    since = None
    while not stop.is_set():
        if since is None and len(finished) >= 4:
            since = time.time()
        if since is not None:
            started = [p for p in pid_dir.iterdir() if p.stat().st_mtime > since]
            if started:
                os.kill(int(started[0].name), signal.SIGKILL)
                killed.append(int(started[0].name))
                return
        time.sleep(0.01)


def test_a_killed_ray_worker_fails_its_attempt_and_every_trial_is_recorded_once(
        cluster, tmp_path: Path) -> None:
    from archsearch.experiment.ray_executor import RayExecutor

    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    estimator = Spec("toy", {"delay": 0.4, "pid_dir": str(pid_dir)})
    strategy = STRATEGIES.create("random", space=build_space(SPACE), seed=0)
    executor = RayExecutor(address=cluster.address, workers=2)
    assert executor.capacity == 2 and len(ray.nodes()) == 2
    exp = Experiment(SPACE, estimator, strategy, SQLiteStorage(tmp_path / "r.db"), executor,
                     max_retries=2)
    finished: list[int] = []
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=kill_a_busy_worker, args=(pid_dir, finished, killed, stop))
    killer.start()
    try:
        records = exp.run(n_trials=16, on_trial=lambda r: finished.append(r.number))
    finally:
        stop.set()
        killer.join()
        exp.close()
    assert killed, "the test never killed a worker"
    assert [r.number for r in records] == list(range(16))
    assert sorted(finished) == list(range(16))  # each trial told once: none twice
    assert len({r.arch for r in records}) == 16
    assert all(r.state is TrialState.COMPLETE for r in records)
    retried = [r for r in records if r.attempts > 1]
    assert len(retried) == 1 and retried[0].attempts == 2
    assert "WorkerCrashedError" in retried[0].error
