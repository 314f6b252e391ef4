"""Training loops and schedules."""

from archsearch.train.loop import TrainConfig, evaluate, fit

__all__ = ["TrainConfig", "evaluate", "fit"]
