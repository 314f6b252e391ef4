"""Strategies: which architecture next? Importing this package registers them."""

from archsearch.strategies.bananas import BANANAS
from archsearch.strategies.base import WAIT, Proposal, Strategy
from archsearch.strategies.bo import BayesianOptimisation
from archsearch.strategies.hyperband import Hyperband
from archsearch.strategies.nao import NAO
from archsearch.strategies.nasrl import NASRL
from archsearch.strategies.pnas import PNAS
from archsearch.strategies.predictor_evolution import PredictorEvolution
from archsearch.strategies.random_search import RandomSearch
from archsearch.strategies.regularized_evolution import RegularizedEvolution
from archsearch.strategies.reinforce import Reinforce

__all__ = [
    "BANANAS",
    "NAO",
    "NASRL",
    "PNAS",
    "WAIT",
    "BayesianOptimisation",
    "Hyperband",
    "PredictorEvolution",
    "Proposal",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "Strategy",
]
