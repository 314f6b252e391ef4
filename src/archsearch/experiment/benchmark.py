"""Strategies against a tabular benchmark, many seeds each: best-so-far curves.

Each (strategy, seed) is an ordinary :class:`Experiment` over the tabular estimator, in memory.
The observed reward is the table's value itself ("oracle reward"), so these curves measure
search efficiency alone; they are not the NB201 paper's protocol (12-epoch validation accuracy
as the reward, final test accuracy reported).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.experiment.experiment import Experiment
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec
from archsearch.types import TrialRecord

PROTOCOL = (
    "oracle-reward: each query observes the benchmark's value itself and the curve is the best "
    "value found so far; this differs from the NB201 paper's protocol (12-epoch validation "
    "accuracy as the reward, 200-epoch test accuracy reported)"
)
CHECKPOINTS = (10, 25, 50, 100, 150, 300)


@dataclass(frozen=True)
class BenchJob:
    strategy: str
    seed: int
    queries: int
    space: Spec
    estimator: Spec
    strategy_config: dict[str, Any]


def best_so_far_curve(job: BenchJob) -> list[float]:
    space = build_space(job.space)
    strategy = STRATEGIES.create(job.strategy, space=space, seed=job.seed, **job.strategy_config)
    experiment = Experiment(job.space, job.estimator, strategy)
    curve: list[float] = []

    def record(trial: TrialRecord) -> None:
        value = trial.objective if trial.objective is not None else -np.inf
        curve.append(max(value, curve[-1]) if curve else value)

    experiment.run(n_trials=job.queries, on_trial=record)
    return curve


def _init_worker(parent: int) -> None:
    from archsearch.experiment.executor import die_with_parent

    die_with_parent(parent)
    import torch

    torch.set_num_threads(1)


def run_benchmark(
    benchmark: str, metric: str, strategies: list[str], seeds: int, queries: int,
    space: str = "nb201", workers: int = 1, strategy_configs: dict[str, dict[str, Any]] | None = None,
    on_done: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Run every strategy with seeds 0..seeds-1 for ``queries`` queries; mean/std curves."""
    for name in strategies:
        STRATEGIES.get(name)  # fail early on unknown names
    estimator = Spec("tabular", {"benchmark": benchmark, "metric": metric})
    space_spec = Spec(space)
    from archsearch.estimators.tabular import TabularEstimator

    TabularEstimator(benchmark, metric)  # fail early on a bad path or column
    configs = strategy_configs or {}
    jobs = [BenchJob(s, seed, queries, space_spec, estimator, configs.get(s, {}))
            for s in strategies for seed in range(seeds)]
    curves: dict[str, list[list[float]]] = {s: [] for s in strategies}
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(os.getpid(),)) as pool:
            for job, curve in zip(jobs, pool.imap(best_so_far_curve, jobs, chunksize=4)):
                curves[job.strategy].append(curve)
                if on_done:
                    on_done(job.strategy, job.seed)
    else:
        for job in jobs:
            curves[job.strategy].append(best_so_far_curve(job))
            if on_done:
                on_done(job.strategy, job.seed)
    results = {}
    for name, runs in curves.items():
        length = min(len(c) for c in runs)
        arr = np.array([c[:length] for c in runs])
        results[name] = {
            "queries": list(range(1, length + 1)),
            "mean": arr.mean(0).round(6).tolist(),
            "std": arr.std(0).round(6).tolist(),
        }
    return {
        "protocol": PROTOCOL, "metric": metric, "benchmark": benchmark, "space": space,
        "seeds": seeds, "queries": queries, "results": results,
    }
