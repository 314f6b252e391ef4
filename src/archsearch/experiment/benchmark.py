"""Strategies against a tabular benchmark, many seeds each: best-so-far curves.

Each (strategy, seed) is an ordinary :class:`Experiment` over a tabular estimator, in memory.
By default a query observes the table's value itself ("oracle reward"), so these curves
measure search efficiency alone; they are not the NB201 paper's protocol (12-epoch validation
accuracy as the reward, final test accuracy reported). Given a per-seed table, a query observes
one training seed's validation accuracy instead and the curve reports the test value of the
architecture observed best (the validation-reward protocol; see :mod:`.bench_protocol`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.experiment.bench_protocol import (
    ORACLE_TEXT,
    VALID_METRIC,
    check_valid_seeds,
    describe,
    observed_estimator,
)
from archsearch.experiment.best_observed import BestObserved
from archsearch.experiment.experiment import Experiment
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec
from archsearch.types import TrialRecord

PROTOCOL = ORACLE_TEXT
CHECKPOINTS = (10, 25, 50, 100, 150, 300)


@dataclass(frozen=True)
class BenchJob:
    strategy: str
    seed: int
    queries: int
    space: Spec
    estimator: Spec  # what the queries observe
    strategy_config: dict[str, Any]
    reported: Spec | None = None  # the table the curve reports; None: the observed value


def best_so_far_curve(job: BenchJob) -> tuple[list[float], list[float]]:
    """The run's reported and observed best-so-far curves, one value per query."""
    from archsearch.estimators.tabular import TabularEstimator

    space = build_space(job.space)
    strategy = STRATEGIES.create(job.strategy, space=space, seed=job.seed, **job.strategy_config)
    experiment = Experiment(job.space, job.estimator, strategy)
    reported = (None if job.reported is None
                else TabularEstimator(**job.reported.config).values())
    best = BestObserved(reported)

    def record(trial: TrialRecord) -> None:
        best.add(trial.arch, trial.objective)

    experiment.run(n_trials=job.queries, on_trial=record)
    return best.curve, best.observed_curve


def _init_worker(parent: int) -> None:
    from archsearch.experiment.executor import die_with_parent

    die_with_parent(parent)
    import torch

    torch.set_num_threads(1)


def run_benchmark(
    benchmark: str, metric: str, strategies: list[str], seeds: int, queries: int,
    space: str = "nb201", workers: int = 1, strategy_configs: dict[str, dict[str, Any]] | None = None,
    on_done: Callable[[str, int], None] | None = None, valid_seeds: str | None = None,
) -> dict[str, Any]:
    """Run every strategy with seeds 0..seeds-1 for ``queries`` queries; mean/std curves.

    ``valid_seeds``: a per-seed table (``tabular-seeds``) for the validation-reward protocol,
    the curves reporting ``metric`` of the best-observed architecture; None: oracle reward."""
    for name in strategies:
        STRATEGIES.get(name)  # fail early on unknown names
    space_spec = Spec(space)
    from archsearch.estimators.tabular import TabularEstimator

    TabularEstimator(benchmark, metric)  # fail early on a bad path or column
    if valid_seeds is not None:
        check_valid_seeds(valid_seeds, benchmark, metric)
    reported = (None if valid_seeds is None
                else Spec("tabular", {"benchmark": benchmark, "metric": metric}))
    configs = strategy_configs or {}
    jobs = [BenchJob(s, seed, queries, space_spec,
                     observed_estimator(benchmark, metric, valid_seeds, seed), configs.get(s, {}),
                     reported)
            for s in strategies for seed in range(seeds)]
    curves: dict[str, list[tuple[list[float], list[float]]]] = {s: [] for s in strategies}
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
        length = min(len(c) for c, _ in runs)
        arr = np.array([c[:length] for c, _ in runs])
        results[name] = {
            "queries": list(range(1, length + 1)),
            "mean": arr.mean(0).round(6).tolist(),
            "std": arr.std(0).round(6).tolist(),
        }
        if valid_seeds is not None:  # the best validation value observed, beside the test
            seen = np.array([o[:length] for _, o in runs])
            results[name]["observed_mean"] = seen.mean(0).round(6).tolist()
            results[name]["observed_std"] = seen.std(0).round(6).tolist()
    report = {
        "protocol": describe(metric, valid_seeds), "metric": metric, "benchmark": benchmark,
        "space": space, "seeds": seeds, "queries": queries, "results": results,
    }
    if valid_seeds is not None:
        report["observed"] = {"benchmark": valid_seeds, "metric": VALID_METRIC}
    return report
