"""What a model-guided strategy finds on the toy space, with its MLP ensemble and blinded."""

from __future__ import annotations

from unittest import mock

import numpy as np

from archsearch.predictors.mlp_ensemble import MLPEnsemble
from archsearch.registry import STRATEGIES
from archsearch.testing import ToySpace
from archsearch.testing.conformance import drive
from archsearch.testing.toy import ToyEstimator

SPACE = ToySpace(5, 4)


def best_found(name: str, seeds: int, budget: int, constant: bool = False) -> float:
    """The mean over seeds of the best toy objective in ``budget`` proposals of ``name``;
    ``constant``: every MLP ensemble predicts 0 +- 0 (the model can guide nothing)."""
    estimator, bests = ToyEstimator(SPACE), []
    blind = mock.patch.object(MLPEnsemble, "predict",
                              lambda self, archs: (np.zeros(len(archs)), np.zeros(len(archs))))
    for seed in range(seeds):
        strategy = STRATEGIES.create(name, space=SPACE, seed=seed)
        if constant:
            with blind:
                proposals = drive(strategy, estimator, budget)
        else:
            proposals = drive(strategy, estimator, budget)
        bests.append(max(estimator.evaluate(SPACE.parse(p)).objective for p in proposals))
    return float(np.mean(bests))
