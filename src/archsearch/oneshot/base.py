"""The one-shot loop: epochs over one supernet, each a training phase and a derive.

Every one-shot method (ENAS, SPOS, and the differentiable ones) is this loop plus its own
way of choosing paths through the supernet and of updating its own parameters (a controller,
architecture weights). A method subclasses :class:`OneShotSearch` and implements

- ``train_epoch()``: one epoch of training, step by step through the estimator (weight steps,
  interleaved with the method's own steps where it has any); returns the epoch's statistics;
- ``derive()``: the architecture the method would answer now, its score, and any further
  per-epoch fields (e.g. the controller's entropy);
- ``method_state()`` / ``load_method_state()``: the method's own parameters and RNGs.

The loop adds the rest: epoch counting, a per-epoch record (``epoch``, the statistics, the
derived architecture and its score, seconds) kept in ``history`` and written to the run's
storage (meta ``epochs``) after every epoch, and an atomic checkpoint after every epoch, from
which a killed search continues exactly as it would have run.

The estimator is a :class:`SupernetEstimator`: step-level training and scoring over a
supernet whose paths are architectures or relaxed weight vectors (:mod:`archsearch.nn.mixed`).
"""

from __future__ import annotations

import abc
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from archsearch.checkpoint_io import read_checkpoint
from archsearch.errors import UserError
from archsearch.spaces.base import Architecture, SearchSpace

log = logging.getLogger(__name__)


class SupernetEstimator(Protocol):
    """Step-level training and scoring of one supernet (``shared-weights``, ``shared-rnn``)."""

    space: SearchSpace
    steps_per_epoch: int

    def train_step(self, path: Any, batch: Any = None) -> None: ...
    def batch(self, split: str = "train") -> Any: ...
    def loss(self, path: Any, batch: Any) -> torch.Tensor: ...
    def score(self, paths: Sequence[Any], batches: int = 1,
              shared: bool = True) -> torch.Tensor: ...
    def epoch_stats(self) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class OneShotSearch(abc.ABC):
    """``epochs`` epochs over ``estimator``'s supernet; see the module docstring."""

    def __init__(self, estimator: SupernetEstimator, epochs: int) -> None:
        if epochs < 1:
            raise UserError(f"a one-shot search needs at least 1 epoch, not {epochs}")
        self.estimator, self.epochs = estimator, int(epochs)
        self.space = estimator.space
        self.epoch = 0
        self.history: list[dict[str, Any]] = []

    # ---- what a method implements ----------------------------------------------------------

    @abc.abstractmethod
    def train_epoch(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def derive(self) -> tuple[Architecture, float, dict[str, Any]]: ...

    def method_state(self) -> dict[str, Any]:
        return {}

    def load_method_state(self, state: dict[str, Any]) -> None:
        """Restore what ``method_state`` saved (nothing, by default)."""
        del state

    # ---- the loop ---------------------------------------------------------------------------

    def run_epoch(self) -> dict[str, Any]:
        start = time.perf_counter()
        stats = self.train_epoch()
        best, score, extra = self.derive()
        self.epoch += 1
        record = {"epoch": self.epoch, **stats, **extra, "derived": best.to_str(),
                  "derived_score": score, "seconds": time.perf_counter() - start}
        self.history.append(record)
        log.info("epoch %d: %s", self.epoch, ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in record.items() if k != "epoch"))
        return record

    def run(self, on_epoch: Callable[[dict[str, Any]], None] | None = None,
            checkpoint: str | Path | None = None, storage: Any = None) -> list[dict[str, Any]]:
        """Run the remaining epochs; after each, save the checkpoint (atomically) and write
        the per-epoch records to ``storage``."""
        while self.epoch < self.epochs:
            record = self.run_epoch()
            if checkpoint is not None:
                self.save(checkpoint)
            if storage is not None:
                storage.set_meta("epochs", self.history)
            if on_epoch is not None:
                on_epoch(record)
        return self.history

    @property
    def derived(self) -> Architecture | None:
        return self.space.parse(self.history[-1]["derived"]) if self.history else None

    # ---- resume ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "history": self.history,
                "estimator": self.estimator.state_dict(), **self.method_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        self.history = list(state["history"])
        self.estimator.load_state_dict(state["estimator"])
        self.load_method_state(state)

    def save(self, path: str | Path) -> None:
        """Atomic: write a temporary file, then rename it over the old checkpoint."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load(self, path: str | Path) -> None:
        state = read_checkpoint(path, f"{path}: the search checkpoint",
                                "delete it to restart the search from epoch 0")
        self.load_state_dict(state)
