"""Issue 19: PNAS in its own space (``nasnet``, cells grown one block at a time) against
regularized evolution at equal trained models, every child trained for real on digits.

Per seed: PNAS (``--beam`` K, ``--blocks`` B levels, level 1 capped at ``--first-level``
cells drawn from the 136 one-block cells) runs to its end; evolution (population 20, sample 5,
full B-block cells of the same space) then gets as many trials as PNAS trained. Each trial
trains its network (``nasnet`` built at the space's search preset, 8 channels and one cell per
stage) from scratch with the ``full-training`` estimator on the embedded digits (all training
images, ``--epochs`` epochs, seeded by the bench seed): the objective is the validation
accuracy, the test accuracy of the best cell by validation is reported beside it. Curves are
best-so-far validation accuracy over trials. Runs are SQLite stores under ``--out``: an
interrupted benchmark resumes.

What differs from the paper: K = 256 and B = 5 there, level 1 trains all 136 cells, each child
trains 20 epochs on CIFAR-10; here all smaller (the defaults below), and evolution is this
project's regularized evolution on the same space (the paper compares with NAS-RL and random).

    python benchmarks/pnas_digits.py --seeds 0 1 2 --json benchmarks/results/pnas_digits.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.experiment import Experiment, SQLiteStorage
from archsearch.experiment.trial import build_space
from archsearch.registry import STRATEGIES, Spec

AT = (8, 16, 32, 48, 64, 80)


def search(strategy: str, seed: int, args: argparse.Namespace,
           trials: int | None) -> dict[str, Any]:
    """One search's per-trial validation and test accuracy (0 for a failed trial)."""
    space = Spec("nasnet", {"blocks": args.blocks})
    estimator = Spec("full-training", {"data": "digits", "epochs": args.epochs,
                                       "batch_size": 64, "seed": seed, "device": "cpu",
                                       "build": {"channels": 8, "cells_per_stage": 1}})
    options: dict[str, Any] = ({"beam": args.beam, "max_blocks": args.blocks,
                                "first_level": args.first_level} if strategy == "pnas" else {})
    s = STRATEGIES.create(strategy, space=build_space(space), seed=seed, **options)
    storage = SQLiteStorage(Path(args.out) / f"{strategy}-seed{seed}.db")
    start = time.perf_counter()
    exp = Experiment(space, estimator, s, storage)
    records = exp.run(n_trials=trials)
    exp.close()
    ok = [r.objective is not None for r in records]
    val = [float(r.objective) if good else 0.0 for r, good in zip(records, ok)]
    test = [float(r.metrics.get("test_acc", 0.0)) if good else 0.0
            for r, good in zip(records, ok)]
    cpu = [float(r.metrics.get("train_cpu_seconds", 0.0)) for r in records]
    best = int(np.argmax(val))
    print(f"{strategy:9s} seed {seed}: {len(records)} trials, best val {val[best]:.4f} "
          f"(test {test[best]:.4f}) {records[best].arch}, {sum(cpu):.0f} training CPU s, "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    return {"val": val, "test": test, "train_cpu_seconds": cpu, "best_arch": records[best].arch,
            "curve": [float(v) for v in np.maximum.accumulate(val)]}


def best_test_at(run: dict[str, Any], q: int) -> float:
    """The test accuracy of the best cell by validation among the first q trials."""
    first = run["val"][:q]
    return run["test"][int(np.argmax(first))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--blocks", type=int, default=3)
    p.add_argument("--beam", type=int, default=8)
    p.add_argument("--first-level", type=int, default=64)
    p.add_argument("--epochs", type=float, default=8)
    p.add_argument("--out", default="runs/bench-pnas-digits")
    p.add_argument("--json", default="benchmarks/results/pnas_digits.json")
    args = p.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {"pnas": [], "evolution": []}
    for seed in args.seeds:
        runs["pnas"].append(search("pnas", seed, args, None))
        runs["evolution"].append(search("evolution", seed, args, len(runs["pnas"][-1]["val"])))
    summary: dict[str, dict[str, list[float]]] = {}
    for name, each in runs.items():
        n = min(len(r["val"]) for r in each)
        summary[name] = {}
        for q in [q for q in AT if q <= n] + ([n] if n not in AT else []):
            vals = [r["curve"][q - 1] for r in each]
            tests = [best_test_at(r, q) for r in each]
            summary[name][f"val_at_{q}"] = [float(np.mean(vals)), float(np.std(vals))]
            summary[name][f"test_at_{q}"] = [float(np.mean(tests)), float(np.std(tests))]
    for key in summary["pnas"]:
        if key in summary["evolution"]:
            (m1, s1), (m2, s2) = summary["pnas"][key], summary["evolution"][key]
            print(f"{key:12s}: pnas {m1:.4f} ± {s1:.4f}   evolution {m2:.4f} ± {s2:.4f}")
    wall = time.perf_counter() - start
    print(f"{len(args.seeds)} seeds, {wall:.0f} s")
    Path(args.json).write_text(json.dumps({"config": vars(args), "summary": summary,
                                           "runs": runs, "wall_seconds": wall}, indent=1))


if __name__ == "__main__":
    main()
