"""Seconds per proposal of each strategy as its observations grow, on NAS-Bench-201 CIFAR-10
under the oracle reward (issue 19: a GP's fit grows with its data; the curve up to 300).

For each strategy and seed: one run of ``--queries`` sequential ask/tell rounds against the
tabular estimator (``nb201_cifar10.csv``, test accuracy), one worker, no threads but the
strategy's own. ``ask`` is timed (time.process_time: CPU seconds of this process, so other jobs
on the machine do not count; the BoTorch/torch parts run on ``--threads`` threads, 1 by
default) and so is ``tell`` (where a model-based strategy refits); what the table shows is the
two together, a proposal's cost, averaged over a window of observations around each of
``--at`` (10 observations either side). The whole run's CPU seconds, and its wall time, come
with it.

    python benchmarks/proposal_time.py --strategies random evolution reinforce bananas bo \
        --seeds 0 1 --queries 300 --json benchmarks/results/proposal_time.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WINDOW = 10


def one_run(name: str, seed: int, queries: int) -> dict:
    from archsearch.estimators.tabular import TabularEstimator
    from archsearch.registry import SPACES, STRATEGIES

    space = SPACES.create("nb201")
    estimator = TabularEstimator(DATA / "nb201_cifar10.csv", "cifar10_test_acc_200ep")
    strategy = STRATEGIES.create(name, space=space, seed=seed)
    costs: list[float] = []
    wall = time.perf_counter()
    for _ in range(queries):
        start = time.process_time()
        arch = strategy.ask()
        if arch is None:
            break
        middle = time.process_time()
        result = estimator.evaluate(arch)  # the table's lookup: not the strategy's cost
        resumed = time.process_time()
        strategy.tell(arch, result)
        costs.append(middle - start + time.process_time() - resumed)
    return {"strategy": name, "seed": seed, "costs": costs,
            "cpu_seconds": float(sum(costs)), "wall_seconds": time.perf_counter() - wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strategies", nargs="+",
                   default=["random", "evolution", "reinforce", "bananas", "bo"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--at", type=int, nargs="+", default=[10, 25, 50, 100, 150, 200, 300])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    runs = []
    for name in args.strategies:
        for seed in args.seeds:
            runs.append(one_run(name, seed, args.queries))
            print(json.dumps({k: v for k, v in runs[-1].items() if k != "costs"}), flush=True)
    table = {}
    print(f"\nCPU seconds per proposal (ask + tell) around n observations, mean over seeds "
          f"{args.seeds}; {args.threads} thread(s)")
    print("| strategy | " + " | ".join(f"n={n}" for n in args.at) + " | whole run (CPU s) |")
    print("|---|" + "---|" * (len(args.at) + 1))
    for name in args.strategies:
        mine = [r for r in runs if r["strategy"] == name]
        row = []
        for n in args.at:
            window = [c for r in mine for c in r["costs"][max(n - WINDOW, 0):n + WINDOW]]
            row.append(float(np.mean(window)) if window else float("nan"))
        total = float(np.mean([r["cpu_seconds"] for r in mine]))
        table[name] = {"per_proposal": dict(zip(map(str, args.at), row)), "cpu_seconds": total}
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in row) + f" | {total:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": vars(args), "table": table,
                                               "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
