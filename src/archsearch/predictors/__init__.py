"""Predictors: models of an architecture's objective (importing this registers them).

- ``mlp-ensemble``: BANANAS' ensemble of feed-forward networks (mean and spread);
- ``gcn``: Wen et al.'s graph convolutional regressor on the adjacency encoding;
- ``renas``: the same network trained with ReNAS' pairwise ranking loss (scores: order only);
- ``nao``: NAO's LSTM encoder, MLP predictor and attention decoder (and its gradient step);
- ``gp``: BoTorch's Matern-5/2 ARD Gaussian process (mean and posterior std; extra ``bo``).
"""

from archsearch.predictors.base import Predictor
from archsearch.predictors.gaussian_process import GaussianProcessPredictor
from archsearch.predictors.gcn import GCNPredictor
from archsearch.predictors.mlp_ensemble import MLPEnsemble
from archsearch.predictors.nao import NAOPredictor
from archsearch.predictors.renas import ReNASPredictor

__all__ = ["GCNPredictor", "GaussianProcessPredictor", "MLPEnsemble", "NAOPredictor",
           "Predictor",
           "ReNASPredictor"]
