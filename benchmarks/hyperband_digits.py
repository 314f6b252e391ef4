"""Hyperband against random search at equal training epochs, every trial trained for real.

Space ``nb201`` built small (``--channels`` 8, 1 cell per stage), data ``digits`` (the
embedded 8x8 images), the ``full-training`` estimator: a trial at a budget of e epochs trains
the cell for e epochs of a cosine schedule over the largest budget (``horizon``), and a
promotion continues the lower rung's network (``continue_dir``), so a promoted cell costs only
the epochs added. Hyperband: eta 3, budgets 1 to ``--max-budget`` (9: brackets of 9, 5 and 3
cells), one iteration; its answer is the best cell observed at the largest budget. Random
search gets the epochs Hyperband actually trained: that many divided by the largest budget
cells, each trained for the largest budget, the best by validation accuracy its answer. Both
answers are judged by their validation and test accuracy at the largest budget (the same
training for both, the estimator being deterministic per cell), over ``--seeds`` seeds. The
training CPU seconds of each search are recorded beside the epochs.

    python benchmarks/hyperband_digits.py --seeds 5 --json benchmarks/results/hyperband_digits.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.experiment.experiment import Experiment
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec
from archsearch.types import Budget, TrialRecord

SPACE = Spec("nb201")


def estimator(args: argparse.Namespace, seed: int, folder: str | None) -> Spec:
    options: dict[str, Any] = {"data": "digits", "epochs": args.max_budget, "seed": seed,
                               "device": "cpu", "horizon": args.max_budget,
                               "build": {"channels": args.channels, "cells_per_stage": 1}}
    if folder is not None:
        options["continue_dir"] = folder
    return Spec("full-training", options)


def answer(records: list[TrialRecord], epochs: float) -> TrialRecord:
    done = [r for r in records if r.objective is not None
            and (r.budget is None or r.budget.epochs == epochs)]
    return max(done, key=lambda r: r.objective)


def cpu_seconds(records: list[TrialRecord]) -> float:
    return float(sum(r.metrics.get("train_cpu_seconds", 0.0) for r in records))


def hyperband(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        strategy = STRATEGIES.create("hyperband", space=build_space(SPACE), seed=seed,
                                     min_budget=1, max_budget=args.max_budget, iterations=1)
        records = Experiment(SPACE, estimator(args, seed, folder), strategy).run()
    trained: dict[str, float] = {}  # promotions continue: each cell's largest budget
    for r in records:
        trained[r.arch] = max(trained.get(r.arch, 0.0), r.budget.epochs)
    best = answer(records, args.max_budget)
    return {"answer": best.arch, "val_acc": best.metrics["val_acc"],
            "test_acc": best.metrics["test_acc"], "trials": len(records), "cells": len(trained),
            "epochs": float(sum(trained.values())),
            "epochs_if_restarted": float(sum(r.budget.epochs for r in records)),
            "train_cpu_seconds": cpu_seconds(records)}


def random_search(seed: int, args: argparse.Namespace, epochs: float) -> dict[str, Any]:
    n = max(1, int(epochs // args.max_budget))
    strategy = STRATEGIES.create("random", space=build_space(SPACE), seed=seed)
    records = Experiment(SPACE, estimator(args, seed, None), strategy,
                         budget=Budget(epochs=args.max_budget)).run(n_trials=n)
    best = answer(records, args.max_budget)
    return {"answer": best.arch, "val_acc": best.metrics["val_acc"],
            "test_acc": best.metrics["test_acc"], "cells": n,
            "epochs": float(n * args.max_budget), "train_cpu_seconds": cpu_seconds(records)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--max-budget", type=float, default=9.0)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--json")
    args = p.parse_args()
    rows = []
    start = time.perf_counter()
    for seed in range(args.seeds):
        hb = hyperband(seed, args)
        rs = random_search(seed, args, hb["epochs"])
        rows.append({"seed": seed, "hyperband": hb, "random": rs})
        print(json.dumps(rows[-1]), flush=True)
    summary: dict[str, Any] = {}
    for name in ("hyperband", "random"):
        summary[name] = {k: [float(np.mean([r[name][k] for r in rows])),
                             float(np.std([r[name][k] for r in rows]))]
                         for k in ("val_acc", "test_acc", "epochs", "cells",
                                   "train_cpu_seconds")}
    wins = sum(r["hyperband"]["val_acc"] > r["random"]["val_acc"] for r in rows)
    ties = sum(r["hyperband"]["val_acc"] == r["random"]["val_acc"] for r in rows)
    print(f"{args.seeds} seeds, {time.perf_counter() - start:.0f} s")
    for name, s in summary.items():
        print(f"  {name:9}: val acc {s['val_acc'][0]:.4f} ± {s['val_acc'][1]:.4f}, test acc "
              f"{s['test_acc'][0]:.4f} ± {s['test_acc'][1]:.4f}, {s['cells'][0]:.0f} cells, "
              f"{s['epochs'][0]:.0f} epochs, {s['train_cpu_seconds'][0]:.0f} CPU s")
    print(f"  Hyperband's answer better on {wins}, tied on {ties}, worse on "
          f"{args.seeds - wins - ties} seeds (validation accuracy)")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": vars(args), "summary": summary,
                                               "wins": wins, "ties": ties, "runs": rows},
                                              indent=1))


if __name__ == "__main__":
    main()
