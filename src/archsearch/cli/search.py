"""``archsearch search``: run (or resume) a search, then retrain the best beside random ones.

With no arguments it runs the main job on the embedded default: regularized evolution over
NAS-Bench-201 cells, each trained briefly on scikit-learn's digits, then the best cell and three
random cells retrained from scratch under one longer protocol.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from archsearch.cli.common import DB_NAME, config_diff, fmt, parse_options, table
from archsearch.errors import UserError
from archsearch.experiment.executor import make_executor
from archsearch.experiment.experiment import Experiment, best_trial
from archsearch.experiment.final import final_evaluation
from archsearch.experiment.storage import SQLiteStorage
from archsearch.experiment.trial import build_estimator, build_space
from archsearch.registry import ESTIMATORS, SPACES, STRATEGIES, Spec
from archsearch.types import TrialRecord, TrialState

DEFAULTS: dict[str, Any] = {
    "space": "nb201", "strategy": "evolution", "estimator": "full-training", "data": "digits",
    "seed": 0, "epochs": 4.0, "final_epochs": 20.0, "baseline_random": 3, "trials": 40,
}
# The default network for full training on small data: NB201 cells, 16 channels, 1 cell/stage.
DEFAULT_BUILD = {"channels": 16, "cells_per_stage": 1}
CONFIG_FLAGS = ("space", "strategy", "estimator", "data", "seed", "epochs", "final_epochs",
                "baseline_random", "benchmark", "metric", "device")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search for an architecture (the main job)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", help=f"search space (default {DEFAULTS['space']})")
    p.add_argument("--strategy", help=f"search strategy (default {DEFAULTS['strategy']})")
    p.add_argument("--estimator", help=f"estimator (default {DEFAULTS['estimator']})")
    p.add_argument("--data", help="'digits' (default), a cifar-10-batches-py folder or an .npz")
    p.add_argument("--benchmark", help="tabular estimator: the CSV table")
    p.add_argument("--metric", help="tabular estimator: the metric column")
    p.add_argument("--trials", type=int, help=f"number of trials (default {DEFAULTS['trials']} "
                   "unless --time is given); on --resume, the new total")
    p.add_argument("--time", type=float, metavar="SECONDS", help="stop proposing after this long")
    p.add_argument("--seed", type=int, help="seed of the strategy and the training (default 0)")
    p.add_argument("--epochs", type=float, help="training epochs per trial (default 4)")
    p.add_argument("--final-epochs", type=float,
                   help="epochs of the final retraining of the best and random cells (default 20)")
    p.add_argument("--baseline-random", type=int, metavar="K",
                   help="random architectures retrained beside the best (default 3; 0: none)")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--workers", type=int, default=1,
                   help="trials run at once in a local process pool (default 1: inline)")
    p.add_argument("--strategy-opt", action="append", metavar="KEY=VALUE",
                   help="strategy option, e.g. population_size=10 (repeatable)")
    p.add_argument("--estimator-opt", action="append", metavar="KEY=VALUE",
                   help="estimator option, e.g. batch_size=128 or build={'channels':8}")
    p.add_argument("--run", help="run folder (default runs/<time>-<space>-<strategy>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run_command=run)


def resolve_config(args: argparse.Namespace, stored: dict[str, Any] | None) -> dict[str, Any]:
    """The run's configuration: stored (on resume) or defaults, overlaid with the given flags."""
    given = {k: getattr(args, k) for k in CONFIG_FLAGS if getattr(args, k) is not None}
    strategy_opts = parse_options(args.strategy_opt, "--strategy-opt")
    estimator_opts = parse_options(args.estimator_opt, "--estimator-opt")
    if stored is not None:
        rebuilt = make_config(
            {**stored["flags"], **given},
            {**stored["strategy_opts"], **strategy_opts},
            {**stored["estimator_opts"], **estimator_opts},
        )
        diff = config_diff(stored, rebuilt)
        if diff:
            raise UserError("--resume with a different configuration; the differences:\n"
                            + "\n".join(diff)
                            + "\nresume without these options, or start a new --run")
        return stored
    flags = {**{k: DEFAULTS.get(k) for k in CONFIG_FLAGS}, **given}
    return make_config(flags, strategy_opts, estimator_opts)


def make_config(flags: dict[str, Any], strategy_opts: dict[str, Any],
                estimator_opts: dict[str, Any]) -> dict[str, Any]:
    SPACES.get(flags["space"])
    STRATEGIES.get(flags["strategy"])
    ESTIMATORS.get(flags["estimator"])
    if flags["estimator"] == "tabular":
        if not flags.get("benchmark") or not flags.get("metric"):
            raise UserError("the tabular estimator needs --benchmark CSV and --metric COLUMN")
        estimator = {"benchmark": flags["benchmark"], "metric": flags["metric"], **estimator_opts}
    elif flags["estimator"] == "full-training":
        estimator = {"data": flags["data"], "epochs": flags["epochs"], "seed": flags["seed"],
                     "device": flags.get("device") or "auto", "build": dict(DEFAULT_BUILD),
                     **estimator_opts}
    else:
        estimator = dict(estimator_opts)
    strategy = {"seed": flags["seed"], **strategy_opts}
    return {
        "flags": flags,
        "strategy_opts": strategy_opts,
        "estimator_opts": estimator_opts,
        "space": {"name": flags["space"], "config": {}},
        "strategy": {"name": flags["strategy"], "config": strategy},
        "estimator": {"name": flags["estimator"], "config": estimator},
    }


def default_run_dir(config: dict[str, Any]) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config['space']['name']}-{config['strategy']['name']}"


def run(args: argparse.Namespace) -> int:
    if args.resume and not args.run:
        raise UserError("--resume needs --run DIR (the run folder to continue)")
    if args.trials is not None and args.trials < 1:
        raise UserError("--trials must be at least 1")
    run_dir = Path(args.run) if args.run else None
    stored = None
    if run_dir is not None and (run_dir / DB_NAME).exists():
        if not args.resume:
            raise UserError(f"run folder {str(run_dir)!r} already holds a run; pass --resume to "
                            "continue it, or choose another --run")
        stored = SQLiteStorage(run_dir / DB_NAME).get_meta("config")
    elif args.resume:
        raise UserError(f"nothing to resume: no run at {str(run_dir)!r}")
    config = resolve_config(args, stored)
    run_dir = run_dir or default_run_dir(config)

    space_spec = Spec(config["space"]["name"], config["space"]["config"])
    estimator_spec = Spec(config["estimator"]["name"], config["estimator"]["config"])
    space = build_space(space_spec)
    build_estimator(space_spec, estimator_spec)  # load data / table now: errors before the run
    strategy = STRATEGIES.create(config["strategy"]["name"], space=space,
                                 **config["strategy"]["config"])
    storage = SQLiteStorage(run_dir / DB_NAME)
    storage.set_meta("config", config)
    executor = make_executor("process" if args.workers > 1 else "inline", args.workers)
    experiment = Experiment(space_spec, estimator_spec, strategy, storage, executor)

    n_trials = args.trials if args.trials is not None else (
        None if args.time is not None else DEFAULTS["trials"])
    if args.trials is None and stored is not None:
        n_trials = storage.get_meta("n_trials") or n_trials
    storage.set_meta("n_trials", n_trials)
    out = sys.stdout
    print(f"run: {run_dir}  ({space_spec.name} x {config['strategy']['name']} x "
          f"{estimator_spec.name}{', resumed' if stored else ''})", file=out)
    try:
        records = _search(experiment, n_trials, args.time, not args.no_progress)
        return _report(records, config, storage, space, estimator_spec, run_dir,
                       not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished trials are saved; continue with\n  archsearch search "
              f"--run {run_dir} --resume", file=sys.stderr)
        return 130
    finally:
        experiment.close()


def _report(records: list[TrialRecord], config: dict[str, Any], storage: SQLiteStorage,
            space: Any, estimator_spec: Spec, run_dir: Path, progress: bool) -> int:
    best = best_trial(records)
    counts = {s.value: sum(r.state is s for r in records) for s in TrialState}
    print(f"trials: {len(records)} ({', '.join(f'{v} {k}' for k, v in counts.items() if v)})")
    if best is None:
        print("no trial completed; see `archsearch show " + str(run_dir) + "` for the errors")
        return 1
    print(f"best architecture (trial {best.number}): {best.arch}")
    print(f"  search objective {fmt(best.objective)}  " + "  ".join(
        f"{k} {fmt(v)}" for k, v in best.metrics.items()))
    _final(config, storage, space, estimator_spec, best, progress)
    _plot(records, run_dir)
    print(f"\nplot: {run_dir / 'search.png'}   details: archsearch show {run_dir}")
    return 0


def _search(experiment: Experiment, n_trials: int | None, time_limit: float | None,
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


def _final(config: dict[str, Any], storage: SQLiteStorage, space: Any, estimator: Spec,
           best: TrialRecord, progress: bool) -> None:
    flags = config["flags"]
    k = int(flags.get("baseline_random") or 0)
    overrides: dict[str, Any] = {}
    protocol = "the same lookup"
    if estimator.name == "full-training":
        overrides = {"epochs": flags["final_epochs"]}
        protocol = f"retrained from scratch for {fmt(flags['final_epochs'], 0)} epochs"
    key = {"best": best.arch, "k": k, "overrides": overrides}
    final = storage.get_meta("final")
    if final is None or final.get("key") != key:
        from tqdm import tqdm

        bar = tqdm(total=1 + k, desc="final", unit="arch", disable=not progress,
                   dynamic_ncols=True)
        rows = final_evaluation(space, estimator, space.parse(best.arch), k, flags["seed"],
                                overrides, on_result=lambda *_: bar.update(1))
        bar.close()
        final = {"key": key, "rows": rows}
        storage.set_meta("final", final)
    rows = final["rows"]
    metric_keys = [m for m in ("val_acc", "test_acc", "params_m") if m in rows["best"]["metrics"]]
    if not metric_keys:
        metric_keys = list(rows["best"]["metrics"])
    print(f"\nfinal protocol ({protocol}), best found vs {k} random architecture(s):")
    body = [["best", rows["best"]["arch"]] + [fmt(rows["best"]["metrics"].get(m)) for m in metric_keys]]
    for i, r in enumerate(rows["random"], 1):
        body.append([f"random {i}", r["arch"]] + [fmt(r["metrics"].get(m)) for m in metric_keys])
    if rows["random"]:
        body.append(["random mean", ""] + [
            f"{fmt(rows['random_mean'].get(m))} ± {fmt(rows['random_std'].get(m))}"
            for m in metric_keys])
    print(table(body, ["", "architecture"] + metric_keys))


def _plot(records: list[TrialRecord], run_dir: Path) -> None:
    from archsearch.report.plots import plot_search

    plot_search([r.objective for r in records], run_dir / "search.png", title=str(run_dir))
