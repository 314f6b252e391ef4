"""Search on a predictor's values: a surrogate benchmark from a few labelled architectures.

At construction the estimator reads a table (as :mod:`~archsearch.estimators.tabular` does:
``train_table`` CSV, ``metric`` column, architecture strings in ``arch_column``), draws
``train_count`` of its architectures uniformly without replacement (seeded by ``seed``),
and fits a predictor (``predictor``, by default BANANAS' MLP ensemble on the space's
default encoding, or ``encoding``) on their values. ``evaluate`` then answers with the
predicted mean as the objective, in no time; the metrics hold it as ``predicted_<metric>``
and the ensemble's spread as ``predicted_<metric>_std``.

Any strategy can so search where only ``train_count`` architectures were ever measured; the
table's other rows are never read after the draw. Each process that builds the estimator
fits the same model (same table, seed and machine: a few seconds for the default ensemble).
"""

from __future__ import annotations

import os

import numpy as np

from archsearch.estimators.base import Estimator, require
from archsearch.estimators.tabular import TabularEstimator
from archsearch.registry import ESTIMATORS, PREDICTORS
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.types import Budget, Result


@ESTIMATORS.register("predictor")
class PredictorEstimator(Estimator):
    def __init__(self, space: SearchSpace, train_table: str | os.PathLike[str], metric: str,
                 train_count: int = 100, seed: int = 0, arch_column: str = "arch_str",
                 predictor: str = "mlp-ensemble", encoding: str | None = None) -> None:
        table = TabularEstimator(train_table, metric, arch_column, space=space).values()
        require(1 <= train_count <= len(table), f"predictor: train_count must be in 1.."
                f"{len(table)} (the table's architectures), not {train_count}")
        names = sorted(table)
        picks = np.random.default_rng(seed).choice(len(names), train_count, replace=False)
        self.train = [names[int(i)] for i in picks]
        self.metric = metric
        options = {} if encoding is None else {"encoding": encoding}
        self.model = PREDICTORS.create(predictor, space=space, seed=seed, **options)
        self.model.fit([space.parse(a) for a in self.train], [table[a] for a in self.train])

    def evaluate(self, arch: Architecture, budget: Budget | None = None) -> Result:
        mean, std = self.model.predict([arch])
        metrics = {f"predicted_{self.metric}": float(mean[0])}
        if std is not None:
            metrics[f"predicted_{self.metric}_std"] = float(std[0])
        return Result(float(mean[0]), metrics, 0.0)
