"""The predictor protocol: learn an architecture's objective from labelled examples.

A predictor is built for one space with a seed (all its randomness comes from that seed, none
from global state) and answers three calls:

- ``fit(archs, values)``: train from scratch on these labelled architectures (none, or not
  one value per architecture: a UserError, :func:`check_examples`); fitting twice with the
  same seed gives the same model;
- ``predict(archs) -> (mean, std)``: float64 arrays, one entry per architecture; ``std`` is
  the model's uncertainty (an ensemble's spread), or None from a model without one;
- ``state_dict()`` / ``load_state_dict(state)``: the fitted model, for a process that must
  predict without refitting.

Larger values are better, as everywhere in archsearch.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.errors import UserError
from archsearch.spaces.base import Architecture, SearchSpace


def check_examples(archs: Sequence[Architecture], values: Sequence[float]) -> None:
    """What every ``fit`` refuses: no examples, or not one value per architecture."""
    if not len(archs):
        raise UserError("a predictor needs at least one labelled architecture to fit")
    if len(archs) != len(values):
        raise UserError(f"a predictor needs one value per architecture: {len(archs)} "
                        f"architectures, {len(values)} values")


class Predictor(abc.ABC):
    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed

    @abc.abstractmethod
    def fit(self, archs: Sequence[Architecture], values: Sequence[float]) -> None: ...

    @abc.abstractmethod
    def predict(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray | None]: ...

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
