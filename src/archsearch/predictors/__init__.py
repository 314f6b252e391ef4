"""Predictors: models of an architecture's objective (importing this registers them)."""

from archsearch.predictors.base import Predictor
from archsearch.predictors.mlp_ensemble import MLPEnsemble

__all__ = ["MLPEnsemble", "Predictor"]
