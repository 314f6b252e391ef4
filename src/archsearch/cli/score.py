"""``archsearch score``: training-free proxies over many architectures, and how well they rank
them against a benchmark (Spearman and Kendall tau)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from archsearch.cli.common import check_output, table
from archsearch.errors import UnknownNameError, UserError
from archsearch.estimators.zero_cost import BASELINES, PROXIES
from archsearch.estimators.zero_cost.estimator import VOTE_DEFAULT
from archsearch.estimators.zero_cost.scoring import (
    ScoreJob,
    rank_correlations,
    score_architectures,
    stratified_sample,
)
from archsearch.registry import SPACES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score architectures with training-free proxies")
    p.add_argument("--space", default="nb201")
    p.add_argument("--proxies", default="all",
                   help=f"comma-separated, or 'all' ({', '.join(sorted(PROXIES))}); params and "
                   "flops are always added as baselines")
    p.add_argument("--data", default="digits", help="images for the proxies' minibatch (.npz, "
                   "cifar-10-batches-py folder or 'digits')")
    p.add_argument("--archs", default="1000", help="how many architectures (stratified by the "
                   "benchmark's metric when one is given, else uniform), or 'all' (every one the "
                   "benchmark lists, else the whole space)")
    p.add_argument("--benchmark", help="CSV with arch_str and the metric: report correlations")
    p.add_argument("--metric", help="the benchmark's metric column")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--json", metavar="OUT", help="write correlations and every score as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run_command=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    space = SPACES.create(args.space)
    check_output(args.json)
    if args.batch_size < 1 or args.workers < 1:
        raise UserError("--batch-size and --workers must be at least 1")
    if args.seed < 0:
        raise UserError(f"--seed must be at least 0, not {args.seed}")
    names = sorted(PROXIES) if args.proxies == "all" else [
        p.strip() for p in args.proxies.split(",") if p.strip()]
    if not names:
        raise UserError("--proxies is empty")
    vote = "vote" in names
    names = [n for n in names if n != "vote"] + (list(VOTE_DEFAULT) if vote else [])
    for name in names:
        if name not in PROXIES:
            raise UnknownNameError("proxy", name, [*PROXIES, "vote"])
    names = list(dict.fromkeys(n for n in names if n not in BASELINES)) + list(BASELINES)
    truth: dict[str, float] | None = None
    if args.benchmark or args.metric:
        if not (args.benchmark and args.metric):
            raise UserError("--benchmark and --metric go together")
        from archsearch.estimators.tabular import TabularEstimator

        truth = TabularEstimator(args.benchmark, args.metric).values()
    archs = pick_archs(space, args.archs, truth, args.seed)
    job = ScoreJob(args.space, args.data, tuple(names), args.batch_size, args.seed)
    bar = tqdm(total=len(archs), desc="score", unit="arch", disable=args.no_progress,
               dynamic_ncols=True)
    start = time.perf_counter()
    scores = score_architectures(job, archs, args.workers, on_done=lambda n: bar.update(1))
    bar.close()
    seconds = time.perf_counter() - start
    if vote:  # the rank average of its members over this pool (Abdelfattah et al.)
        names = add_vote(scores, archs, names)
    report = {"proxies": {}, "n_archs": len(archs), "space": args.space, "data": args.data,
              "batch_size": args.batch_size, "seed": args.seed,
              "benchmark": args.benchmark, "metric": args.metric,
              "wall_seconds": round(seconds, 1), "workers": args.workers}
    rows = []
    for name in names:
        values = [scores[a][name][0] for a in archs]
        entry: dict[str, float | None] = {
            "seconds_per_arch": float(np.mean([scores[a][name][1] for a in archs]))}
        if truth is not None:
            entry.update(rank_correlations(values, [truth[a] for a in archs]))
        report["proxies"][name] = entry
        rows.append([name] + ([f"{entry['spearman']:.3f}", f"{entry['kendall']:.3f}"]
                              if truth is not None else []) + [f"{entry['seconds_per_arch']:.3f}"])
    header = ["proxy"] + (["spearman", "kendall"] if truth is not None else []) + ["s/arch"]
    print(f"{len(archs)} architectures of {args.space}, minibatch of {args.batch_size} from "
          f"{args.data}; {seconds:.0f} s with {args.workers} worker(s)")
    print(table(rows, header))
    print("(a shared pass is charged to the first proxy that needs it, in the order listed)")
    if args.json:
        report["scores"] = {a: {n: scores[a][n][0] for n in names} for a in archs}
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return 0


def add_vote(scores: dict, archs: list[str], names: list[str]) -> list[str]:
    """Add ``vote``: each architecture's mean rank under synflow, jacob_cov and snip."""
    from scipy.stats import rankdata

    ranks = [rankdata([scores[a][m][0] for a in archs]) for m in VOTE_DEFAULT]
    seconds = {a: sum(scores[a][m][1] for m in VOTE_DEFAULT) for a in archs}
    for i, a in enumerate(archs):
        scores[a]["vote"] = (float(np.mean([r[i] for r in ranks])), seconds[a])
    return ["vote", *names]


def pick_archs(space, how: str, truth: dict[str, float] | None, seed: int) -> list[str]:
    if how == "all" and truth is not None:
        return list(truth)
    if how == "all":
        if space.size() > 100_000:
            raise UserError(f"{space.name} has {space.size()} architectures; give --archs N")
        decisions = space.decisions()
        archs = []
        for i in range(space.size()):
            choices, rest = [], i
            for d in decisions:
                choices.append(rest % d.n_options)
                rest //= d.n_options
            archs.append(space.decode(choices).to_str())
        return archs
    try:
        n = int(how)
    except ValueError:
        raise UserError(f"--archs takes a number or 'all', not {how[:40]!r}") from None
    if n < 1:
        raise UserError(f"--archs must be at least 1 (or 'all'), not {n}")
    if truth is not None:
        known = dict(truth.items())
        return stratified_sample(known, min(n, len(known)), seed)
    rng = np.random.default_rng(seed)
    out: dict[str, None] = {}
    for _ in range(100 * n):
        if len(out) >= min(n, space.size()):
            break
        out.setdefault(space.sample(rng).to_str(), None)
    return list(out)
