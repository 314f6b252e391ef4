"""``archsearch bench``: strategies against a tabular benchmark, N seeds each."""

from __future__ import annotations

import argparse
import json
import math
import os
import time

from archsearch.cli.common import check_output, jsonable, table
from archsearch.errors import UserError
from archsearch.experiment.bench_protocol import (
    VALID_SEEDS_FILE,
    check_protocol,
    check_valid_seeds,
    default_valid_seeds,
)
from archsearch.experiment.benchmark import CHECKPOINTS, run_benchmark


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark strategies on a tabular benchmark")
    p.add_argument("--benchmark", required=True, help="CSV with arch_str and metric columns")
    p.add_argument("--metric", required=True, help="the metric column (maximised)")
    p.add_argument("--space", default="nb201", help="search space of the table (default nb201)")
    p.add_argument("--strategies", default="random,evolution,reinforce",
                   help="comma-separated strategy names (default random,evolution,reinforce)")
    p.add_argument("--seeds", type=int, default=10, help="runs per strategy (seeds 0..N-1)")
    p.add_argument("--queries", type=int, default=300, help="queries per run (default 300)")
    p.add_argument("--protocol", default="oracle", metavar="oracle|validation",
                   help="oracle (default): each query observes --metric itself; validation: "
                        "each query observes one training seed's validation accuracy (drawn "
                        "per query from --valid-seeds) and the curve is --metric of the best "
                        "observed architecture")
    p.add_argument("--valid-seeds", metavar="CSV",
                   help="--protocol validation: the per-seed table (default: "
                        f"{VALID_SEEDS_FILE} beside --benchmark)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes (default: all cores)")
    p.add_argument("--json", metavar="OUT", help="write the curves as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="draw the curves")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run_command=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    strategies = _checked_strategies(args)
    from archsearch.estimators.tabular import TabularEstimator
    from archsearch.registry import SPACES

    space = SPACES.create(args.space)
    optimum = TabularEstimator(args.benchmark, args.metric,  # checks the table first
                               space=space).best()
    valid_seeds = None
    if args.protocol == "validation":
        valid_seeds = (args.valid_seeds if args.valid_seeds is not None
                       else default_valid_seeds(args.benchmark))
        check_valid_seeds(valid_seeds, args.benchmark, args.metric, space)
    start = time.perf_counter()
    bar = tqdm(total=len(strategies) * args.seeds, desc="bench", unit="run",
               disable=args.no_progress, dynamic_ncols=True)
    report = run_benchmark(args.benchmark, args.metric, strategies, args.seeds, args.queries,
                           args.space, max(1, args.workers), on_done=lambda *_: bar.update(1),
                           valid_seeds=valid_seeds)
    bar.close()
    seconds = time.perf_counter() - start
    report["seconds"] = round(seconds, 2)
    for name, res in report["results"].items():
        if not all(math.isfinite(m) for m in res["mean"][-1:]):
            raise UserError(f"{name} found no architecture in the table in {args.queries} "
                            "queries (every trial failed): is it the right --space?")
    _print_curves(args, report, validation=valid_seeds is not None)
    print(f"{seconds:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(jsonable(report), f, indent=1, allow_nan=False)
        print(f"wrote {args.json}")
    if args.plot:
        from archsearch.report.plots import plot_benchmark

        plot_benchmark(report, args.plot, optimum)
        print(f"wrote {args.plot}")
    return 0


def _checked_strategies(args: argparse.Namespace) -> list[str]:
    """The strategy names, after every option that needs no file is checked."""
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if not strategies:
        raise UserError("--strategies is empty")
    if args.seeds < 1 or args.queries < 1 or args.workers < 1:
        raise UserError("--seeds, --queries and --workers must be at least 1")
    check_protocol(args.protocol)
    if args.valid_seeds is not None and args.protocol != "validation":
        raise UserError("--valid-seeds is for --protocol validation; drop it, or add "
                        "--protocol validation")
    check_output(args.json)
    check_output(args.plot)
    return strategies


def _print_curves(args: argparse.Namespace, report: dict, validation: bool) -> None:
    """The best-so-far table at the checkpoints, and which strategies finished early."""
    marks = [q for q in CHECKPOINTS if q < args.queries] + [args.queries]
    rows = []
    for name, res in report["results"].items():
        # a strategy that finished early (PNAS after its last level) has a shorter curve
        rows.append([name] + [f"{res['mean'][q - 1]:.2f} ± {res['std'][q - 1]:.2f}"
                              if q <= len(res["mean"]) else "-" for q in marks])
    if validation:
        print(f"{args.metric} of the best-observed architecture (mean ± std over {args.seeds} "
              "seeds) after Q queries, validation-reward protocol")
    else:
        print(f"best {args.metric} so far (mean ± std over {args.seeds} seeds) after Q queries")
    print(table(rows, ["strategy"] + [f"Q={q}" for q in marks]))
    for name, res in report["results"].items():
        if len(res["mean"]) < args.queries:
            print(f"{name} finished after {len(res['mean'])} queries (its shortest run)")
    print(f"protocol: {report['protocol']}")
