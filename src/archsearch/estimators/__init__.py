"""Estimators: how good is an architecture? Importing this package registers them."""

from archsearch.estimators.base import Estimator
from archsearch.estimators.full_training import FullTrainingEstimator
from archsearch.estimators.language_model import LMTrainingEstimator, SharedRNNEstimator
from archsearch.estimators.predictor import PredictorEstimator
from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.estimators.supernet_checkpoint import SupernetCheckpointEstimator
from archsearch.estimators.tabular import TabularEstimator
from archsearch.estimators.tabular_seeds import SeedDrawTabularEstimator
from archsearch.estimators.zero_cost.estimator import ZeroCostEstimator

__all__ = [
    "Estimator", "FullTrainingEstimator", "LMTrainingEstimator", "PredictorEstimator",
    "SeedDrawTabularEstimator", "SharedRNNEstimator", "SharedWeightsEstimator",
    "SupernetCheckpointEstimator", "TabularEstimator", "ZeroCostEstimator",
]
