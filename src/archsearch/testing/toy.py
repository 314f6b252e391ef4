"""A toy search space and objective: test strategies and experiments in milliseconds.

``ToySpace(n_decisions, n_options)`` has ``n_options ** n_decisions`` architectures written
``toy:1-0-3``. ``ToyEstimator`` scores closeness to a target choice vector, maximal (equal to
``n_decisions``) exactly at the target, with partial credit for near misses so that search
has a gradient to follow; ``delay`` makes each evaluation take that long (for kill tests),
``fail_on`` raises for the given architectures, ``die_once_on`` kills the worker process the
first time it evaluates one of them (a marker file in ``marker_dir`` remembers), and ``pid_dir``
receives one file per evaluating process, named by its PID (for tests that kill workers), and
``work`` does that many 256x256 matrix products first (a fixed amount of CPU work per trial, for
executor throughput benchmarks). A budget of ``e`` epochs scales the score by e / (e + 1) (a
low fidelity that keeps the order) and costs ``e`` simulated seconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archsearch.errors import ArchitectureError
from archsearch.estimators.base import Estimator
from archsearch.registry import ESTIMATORS, SPACES
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.types import Budget, Decision, Result


@dataclass(frozen=True)
class ToyArch(Architecture):
    choices: tuple[int, ...]
    space = "toy"

    def to_str(self) -> str:
        return "toy:" + "-".join(map(str, self.choices))


@SPACES.register("toy")
class ToySpace(SearchSpace):
    """n_decisions categorical decisions of n_options each (for tests and examples)."""

    name = "toy"

    def __init__(self, n_decisions: int = 4, n_options: int = 4) -> None:
        self._decisions = tuple(Decision(f"d{i}", n_options) for i in range(n_decisions))

    def decisions(self) -> Sequence[Decision]:
        return self._decisions

    def decode(self, choices: Sequence[int]) -> ToyArch:
        return ToyArch(self.check_choices(choices))

    def encode(self, arch: Architecture) -> tuple[int, ...]:
        assert isinstance(arch, ToyArch)
        return arch.choices

    def parse(self, text: str) -> ToyArch:
        if not text.startswith("toy:"):
            raise ArchitectureError(f"toy architecture {text!r} must start with 'toy:'")
        try:
            choices = [int(c) for c in text[4:].split("-")]
        except ValueError:
            raise ArchitectureError(f"toy architecture {text!r}: choices must be integers") from None
        return self.decode(choices)

    def build(self, arch: Architecture, num_classes: int = 10, in_channels: int = 1,
              **_: Any) -> nn.Module:
        width = 4 + 4 * sum(self.encode(arch))
        return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))


def default_target(space: SearchSpace) -> tuple[int, ...]:
    return tuple((3 * i + 1) % d.n_options for i, d in enumerate(space.decisions()))


@ESTIMATORS.register("toy")
class ToyEstimator(Estimator):
    def __init__(self, space: SearchSpace, target: Sequence[int] | None = None,
                 delay: float = 0.0, fail_on: Sequence[str] = (), die_once_on: Sequence[str] = (),
                 marker_dir: str | None = None, pid_dir: str | None = None,
                 work: int = 0) -> None:
        self.space = space
        self.target = tuple(target) if target is not None else default_target(space)
        self.delay = delay
        self.fail_on = set(fail_on)
        self.die_once_on = set(die_once_on)
        self.marker_dir = marker_dir
        self.pid_dir = pid_dir
        self.work = work

    def optimum(self) -> float:
        return float(len(self.target))

    def evaluate(self, arch: Architecture, budget: Budget | None = None) -> Result:
        if self.pid_dir is not None:
            (Path(self.pid_dir) / str(os.getpid())).write_text(arch.to_str())
        if arch.to_str() in self.die_once_on and self.marker_dir is not None:
            marker = Path(self.marker_dir) / arch.to_str().replace(":", "_")
            if not marker.exists():
                marker.touch()
                os._exit(3)  # a worker process dying mid-trial
        if self.delay:
            time.sleep(self.delay)
        if self.work:
            m = torch.full((256, 256), 1.0 / 256)
            for _ in range(self.work):
                m = m @ m
        if arch.to_str() in self.fail_on:
            raise RuntimeError(f"toy failure for {arch}")
        choices = self.space.encode(arch)
        score = 0.0
        for c, t, d in zip(choices, self.target, self.space.decisions()):
            score += 1.0 if c == t else 0.5 * (1 - abs(c - t) / d.n_options)
        if budget is None or budget.epochs is None:
            return Result(score, {"score": score})
        # a budget of e epochs sees the score shrunk by e / (e + 1) (the order is kept) and
        # costs e (simulated) seconds
        seen = score * budget.epochs / (budget.epochs + 1)
        return Result(seen, {"score": seen, "epochs": budget.epochs}, float(budget.epochs))
