"""A real search process killed with SIGKILL (and one stopped by Ctrl-C) resumes to the same
trials as an uninterrupted run of the same seed: none lost, none repeated."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARGS = [
    "search", "--space", "nb201", "--strategy", "evolution", "--estimator", "full-training",
    "--epochs", "1", "--trials", "14", "--seed", "3", "--baseline-random", "0",
    "--final-epochs", "0.2", "--no-progress",
    "--strategy-opt", "population_size=4", "--strategy-opt", "sample_size=2",
    "--estimator-opt", "build={'channels': 4, 'cells_per_stage': 1}",
    "--estimator-opt", "batch_size=128", "--device", "cpu",
]


def cli(run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "archsearch", *ARGS, "--run", str(run), *extra]


def trials(run: Path) -> list[tuple[int, str, str, float | None]]:
    db = sqlite3.connect(run / "trials.db")
    rows = db.execute("SELECT number, arch, state, objective FROM trials ORDER BY number").fetchall()
    db.close()
    return rows


def count_done(run: Path) -> int:
    if not (run / "trials.db").exists():
        return 0
    try:
        return sum(1 for r in trials(run) if r[2] == "complete")
    except sqlite3.OperationalError:
        return 0


def start_and_interrupt(run: Path, sig: int, after: int) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cli(run), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while count_done(run) < after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the search finished before it could be interrupted"
    done_at_kill = count_done(run)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    return done_at_kill


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> list:
    run = tmp_path_factory.mktemp("whole") / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cli(run), check=True, env=env, capture_output=True, timeout=300)
    return trials(run)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
def test_interrupted_search_resumes_to_the_same_trials(tmp_path: Path, uninterrupted: list,
                                                       sig: int) -> None:
    run = tmp_path / "run"
    done_at_kill = start_and_interrupt(run, sig, after=5)
    assert 5 <= done_at_kill < 14
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cli(run, "--resume"), env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    resumed = trials(run)
    assert len(resumed) == 14
    assert [r[0] for r in resumed] == list(range(14))
    assert all(r[2] == "complete" for r in resumed)
    assert [(r[1], r[3]) for r in resumed] == [(r[1], r[3]) for r in uninterrupted]
