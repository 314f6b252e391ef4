"""``archsearch search``: run (or resume) a search, then retrain the best beside random ones.

With no arguments it runs the main job on the embedded default data (scikit-learn's digits):
ENAS over the micro (cell) space, then the derived cell and three random cells retrained from
scratch under one protocol, side by side. Trials methods (random, evolution, reinforce, nas-rl,
hyperband) run trials through an estimator (full-training by default, or a tabular benchmark).
A run can also be described by a TOML file (--config); every run folder keeps its fully
resolved configuration in config.toml, which --config takes to repeat the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from archsearch.cli.common import parse_options
from archsearch.cli.progress import Bars
from archsearch.cli.report import print_final, print_search
from archsearch.errors import UserError
from archsearch.experiment.executor import EXECUTORS, Executor, make_executor
from archsearch.run import Run, RunConfig, from_toml, resolve

# flag -> RunConfig field (None: the same name)
FLAGS = {"space": None, "method": None, "estimator": None, "data": None, "seed": None,
         "epochs": None, "final_epochs": None, "baseline_random": None, "trials": None,
         "time": None, "retries": None, "benchmark": None, "metric": None, "device": None}
OPTION_FLAGS = {"space_opt": "space_options", "method_opt": "method_options",
                "estimator_opt": "estimator_options", "final_opt": "final_options"}
MAX_PROCESS_WORKERS = 4 * (os.cpu_count() or 1)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search for an architecture (the main job)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="TOML", help="a run described by a TOML file (flags "
                   "given too override it); e.g. RUN/config.toml to repeat a run")
    p.add_argument("--method", "--strategy", dest="method",
                   help="search method (default enas; `archsearch methods` lists them)")
    p.add_argument("--space", help="search space (default: the method's)")
    p.add_argument("--estimator", help="trials methods: full-training (default), tabular, "
                   "zero-cost:PROXY (training-free, e.g. zero-cost:naswot), ...")
    p.add_argument("--data", help="'digits' (default), a cifar-10-batches-py folder or an .npz")
    p.add_argument("--benchmark", help="tabular estimator: the CSV table")
    p.add_argument("--metric", help="tabular estimator: the metric column")
    p.add_argument("--trials", type=int, help="trials methods: number of trials (default 40 "
                   "unless --time is given); on --resume, the new total")
    p.add_argument("--time", type=float, metavar="SECONDS", help="stop proposing after this long")
    p.add_argument("--seed", type=int, help="seed of the search and the training (default 0)")
    p.add_argument("--epochs", type=float, help="one-shot: search epochs (default 30); trials: "
                   "training epochs per trial (default 4)")
    p.add_argument("--final-epochs", type=float,
                   help="epochs of the final retraining of the best and random ones (default 20)")
    p.add_argument("--baseline-random", type=int, metavar="K",
                   help="random architectures retrained beside the best (default 3; 0: none)")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--workers", type=int, default=1,
                   help="trials methods: trials run at once (default 1; with --executor ray, 1 "
                   "means as many as the cluster's CPUs allow)")
    p.add_argument("--executor", choices=EXECUTORS,
                   help="trials methods: where trials run: inline (default for 1 worker), "
                   "process (a local process pool; default for --workers > 1) or ray")
    p.add_argument("--ray-address", metavar="HOST:PORT",
                   help="--executor ray: the cluster to join ('auto' or HOST:PORT of `ray start "
                   "--head`); default: start a local Ray instance for the run")
    p.add_argument("--cpus-per-trial", type=float, default=1.0,
                   help="--executor ray: CPUs each trial reserves (default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="--executor ray: GPUs each trial reserves (default 0; fractions share)")
    p.add_argument("--retries", type=int,
                   help="times a failed trial (raised, or its worker died) is retried before it "
                   "counts as failed (default 1)")
    p.add_argument("--method-opt", "--strategy-opt", dest="method_opt", action="append",
                   metavar="KEY=VALUE", help="method option, e.g. population_size=10, or for "
                   "ENAS controller_steps=30 (repeatable; `archsearch methods NAME` lists them)")
    p.add_argument("--estimator-opt", action="append", metavar="KEY=VALUE",
                   help="estimator option, e.g. batch_size=128, build={'channels': 8} or for "
                   "ENAS supernet={'channels': 20, 'cells_per_stage': 2}")
    p.add_argument("--final-opt", action="append", metavar="KEY=VALUE",
                   help="option of the final retraining, e.g. cutout=16, drop_path=0.2, "
                   "build={'channels': 36, 'cells_per_stage': 5, 'auxiliary': True}")
    p.add_argument("--space-opt", action="append", metavar="KEY=VALUE",
                   help="option of the space, e.g. n_nodes=4 (enas-micro)")
    p.add_argument("--run", help="run folder (default runs/<time>-<space>-<method>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run_command=run)


def given_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig fields the flags set (nothing for a flag not given)."""
    given = {field or flag: getattr(args, flag) for flag, field in FLAGS.items()
             if getattr(args, flag) is not None}
    for flag, field in OPTION_FLAGS.items():
        options = parse_options(getattr(args, flag), "--" + flag.replace("_", "-"))
        if options:
            given[field] = options
    return given


def check_runtime(args: argparse.Namespace) -> None:
    if args.resume and not args.run:
        raise UserError("--resume needs --run DIR (the run folder to continue)")
    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.executor != "ray" and args.workers > MAX_PROCESS_WORKERS:
        raise UserError(f"--workers {args.workers} is more than {MAX_PROCESS_WORKERS} (4 per "
                        "CPU core of this machine); use --executor ray for a cluster")
    if args.executor != "ray" and (args.ray_address or args.gpus_per_trial):
        raise UserError("--ray-address and --gpus-per-trial are for --executor ray")
    if args.cpus_per_trial <= 0 or args.gpus_per_trial < 0:
        raise UserError("--cpus-per-trial must be positive and --gpus-per-trial at least 0")
    if args.executor == "ray":  # Ray missing or unreachable: say so before a run exists
        from archsearch.experiment.ray_executor import check_reachable, import_ray

        import_ray()
        if args.ray_address not in (None, "auto"):
            check_reachable(args.ray_address)


def executor_from_args(args: argparse.Namespace) -> Executor:
    name = args.executor or ("process" if args.workers > 1 else "inline")
    if name == "ray":
        return make_executor("ray", args.workers if args.workers > 1 else None,
                             address=args.ray_address, cpus_per_trial=args.cpus_per_trial,
                             gpus_per_trial=args.gpus_per_trial or 0)
    return make_executor(name, args.workers)


def default_folder(config: RunConfig) -> Path:
    run = resolve(config)["run"]
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{run['space']}-{run['method']}"


def open_run(args: argparse.Namespace) -> Run:
    given = given_fields(args)
    if args.config:
        base = from_toml(args.config).to_dict()
        for key, value in given.items():
            base[key] = {**base[key], **value} if isinstance(value, dict) else value
        given = base
    if args.resume:
        return Run.resume(args.run, given)
    config = RunConfig.from_options(given, "search")
    return Run.create(args.run or default_folder(config), config)


def run(args: argparse.Namespace) -> int:
    check_runtime(args)
    run = open_run(args)
    progress = Bars(not args.no_progress)
    space, method = run.resolved["run"]["space"], run.resolved["run"]["method"]
    print(f"run: {run.folder}  ({space} x {method} x {run.resolved['estimator']['name']}"
          f"{', resumed' if run.resumed else ''})")
    try:
        executor = executor_from_args(args) if run.method.kind == "trials" or \
            method == "spos" else None
        best = run.search(progress, executor)
        plot(run)
        print_search(run)
        if best is None:
            print(f"no architecture found; see `archsearch show {run.folder}` for the errors")
            return 1
        rows = run.final(progress)
        print_final(rows, run.resolved["final"], int(run.resolved["run"]["baseline_random"]))
        print(f"\ndetails: archsearch show {run.folder}   retrain: archsearch train "
              f"{run.folder}   export: archsearch export {run.folder}")
        return 0
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished work is saved; continue with\n  archsearch search "
              f"--run {run.folder} --resume", file=sys.stderr)
        return 130
    finally:
        run.close()


def plot(run: Run) -> None:
    from archsearch.report.plots import plot_epochs, plot_search

    if run.epochs():
        plot_epochs(run.epochs(), run.folder / "search.png")
    elif run.trials():
        plot_search([r.objective for r in run.trials()], run.folder / "search.png",
                    title=str(run.folder))
