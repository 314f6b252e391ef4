"""Estimators: how good is an architecture? Importing this package registers them."""

from archsearch.estimators.base import Estimator
from archsearch.estimators.full_training import FullTrainingEstimator
from archsearch.estimators.tabular import TabularEstimator

__all__ = ["Estimator", "FullTrainingEstimator", "TabularEstimator"]
