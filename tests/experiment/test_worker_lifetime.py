"""Pool workers die with their driver, even one killed while the worker was starting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

START = ("import os, sys; from archsearch.experiment.executor import die_with_parent; "
         "die_with_parent({parent}); print('alive')")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_whose_driver_died_before_it_started_exits() -> None:
    # a parent PID that is not this process's parent: the driver it was started by is gone
    gone = subprocess.run([sys.executable, "-c", START.format(parent=1)],
                          capture_output=True, text=True)
    assert gone.returncode == 1 and "alive" not in gone.stdout


def test_a_worker_whose_driver_lives_goes_on() -> None:
    alive = subprocess.run([sys.executable, "-c", START.format(parent=os.getpid())],
                           capture_output=True, text=True)
    assert alive.returncode == 0 and alive.stdout.strip() == "alive", alive.stderr
