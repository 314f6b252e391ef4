"""Regression pin for the trial-based strategies: the proposals of seeded runs are the recorded
ones (``strategy_regression.json``, written before per-trial budgets changed the strategy and
experiment contracts). A change of the ask/tell plumbing must not change what a strategy
proposes. Regenerate only for a deliberate change, saying why in the commit:

    ARCHSEARCH_REGEN_PINS=1 python -m pytest tests/experiment/test_strategy_regression.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from archsearch.registry import STRATEGIES
from archsearch.testing import ToySpace
from archsearch.testing.toy import ToyEstimator

PINS = Path(__file__).with_name("strategy_regression.json")
REGEN = os.environ.get("ARCHSEARCH_REGEN_PINS") == "1"
NAMES = ("random", "evolution", "reinforce", "nas-rl")


def proposals(name: str) -> list[str]:
    """60 proposals of seed 4 on a 4**5 toy space, results told two proposals late (as when
    two trials run at once), so the pin covers out-of-order tells too."""
    space = ToySpace(5, 4)
    estimator = ToyEstimator(space)
    strategy = STRATEGIES.create(name, space=space, seed=4)
    pending, out = [], []
    for _ in range(60):
        arch = strategy.ask()
        if arch is None:
            break
        out.append(arch.to_str())
        pending.append(arch)
        if len(pending) > 2:
            oldest = pending.pop(0)
            strategy.tell(oldest, estimator.evaluate(oldest))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_strategy_reproduces_the_pinned_proposals(name: str) -> None:
    got = proposals(name)
    pins = json.loads(PINS.read_text()) if PINS.exists() else {}
    if REGEN:
        pins[name] = got
        PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    assert got == pins[name]
