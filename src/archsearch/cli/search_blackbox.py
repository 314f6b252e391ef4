"""The black-box path of ``archsearch search``: trials through the experiment loop."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from archsearch.cli.common import fmt
from archsearch.experiment.executor import Executor, make_executor
from archsearch.experiment.experiment import Experiment, best_trial
from archsearch.experiment.storage import SQLiteStorage
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec
from archsearch.types import TrialRecord, TrialState


def search_blackbox(config: dict[str, Any], run_dir: Path, storage: SQLiteStorage,
                    args: argparse.Namespace, resumed: bool, progress: bool) -> str | None:
    space_spec = Spec.from_json(config["space"])
    estimator_spec = Spec.from_json(config["estimator"])
    space = build_space(space_spec)
    options = dict(config["strategy"]["config"])
    proxy = options.pop("warm_start_proxy", None)
    pool = int(options.pop("warm_start_pool", 500))
    if proxy is not None:  # evolution warm-started by a training-free proxy
        options["warm_start"] = storage.get_meta("warm_start") or _warm_start(
            space, config, proxy, pool, int(options.get("population_size", 20)), progress)
        storage.set_meta("warm_start", options["warm_start"])
    strategy = STRATEGIES.create(config["strategy"]["name"], space=space, **options)
    experiment = Experiment(space_spec, estimator_spec, strategy, storage,
                            executor_from_args(args), max_retries=args.retries)
    n_trials = args.trials
    if n_trials is None:
        n_trials = storage.get_meta("n_trials") if resumed else None
        if n_trials is None and args.time is None:
            n_trials = 40
    storage.set_meta("n_trials", n_trials)
    try:
        records = _run(experiment, n_trials, args.time, progress)
    finally:
        experiment.executor.shutdown()
    best = best_trial(records)
    counts = {s.value: sum(r.state is s for r in records) for s in TrialState}
    print(f"trials: {len(records)} ({', '.join(f'{v} {k}' for k, v in counts.items() if v)})")
    from archsearch.report.plots import plot_search

    plot_search([r.objective for r in records], run_dir / "search.png", title=str(run_dir))
    if best is None:
        return None
    print(f"best architecture (trial {best.number}): {best.arch}")
    print(f"  search objective {fmt(best.objective)}  " + "  ".join(
        f"{k} {fmt(v)}" for k, v in best.metrics.items()))
    storage.set_meta("best_arch", best.arch)
    return best.arch


def executor_from_args(args: argparse.Namespace) -> Executor:
    name = args.executor or ("process" if args.workers > 1 else "inline")
    if name == "ray":
        return make_executor("ray", args.workers if args.workers > 1 else None,
                             address=args.ray_address, cpus_per_trial=args.cpus_per_trial,
                             gpus_per_trial=args.gpus_per_trial or 0)
    return make_executor(name, args.workers)


def _warm_start(space: object, config: dict[str, Any], proxy: str, pool: int, keep: int,
                progress: bool) -> list[str]:
    from archsearch.estimators.zero_cost import warm_start
    from archsearch.estimators.zero_cost.estimator import ZeroCostEstimator

    flags = config["flags"]
    estimator = ZeroCostEstimator(space, proxy=proxy, data=flags["data"],  # type: ignore[arg-type]
                                  seed=flags["seed"])
    if progress:
        print(f"warm start: the best {keep} of {pool} random architectures by {proxy}")
    return warm_start(estimator, pool, keep, flags["seed"])


def _run(experiment: Experiment, n_trials: int | None, time_limit: float | None,
         progress: bool) -> list[TrialRecord]:
    from tqdm import tqdm

    done = [r for r in experiment.storage.trials() if r.state is not TrialState.RUNNING]
    best = max((r.objective for r in done if r.objective is not None), default=None)
    bar = tqdm(total=n_trials, initial=len(done), desc="search", unit="trial",
               disable=not progress, dynamic_ncols=True)
    if best is not None:
        bar.set_postfix(best=f"{best:.4f}")

    def on_trial(record: TrialRecord) -> None:
        nonlocal best
        if record.objective is not None and (best is None or record.objective > best):
            best = record.objective
        bar.update(1)
        if best is not None:
            bar.set_postfix(best=f"{best:.4f}")

    try:
        return experiment.run(n_trials=n_trials, time_limit=time_limit, on_trial=on_trial)
    finally:
        bar.close()
