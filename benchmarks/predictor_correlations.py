"""How well each predictor ranks unseen NAS-Bench-201 cells, by training-set size.

Ground truth: CIFAR-10 200-epoch test accuracy (``../shared/data/nb201_cifar10.csv``). For each
seed, a numpy Generator seeded with it permutes the 15,625 cells: the first ``--held-out``
(1,000) are held back, the next ``max(--sizes)`` form a training pool, and the training set of
size k is the pool's first k (so the sets are disjoint and nested). Each learned predictor
(a registry name: ``mlp-ensemble``, ``gcn``, ``renas``, ``gp``, with their default options and
the seed) is fitted on the training set and predicts the held-back cells; reported per
(predictor, size): Spearman's rho and Kendall's tau-b (scipy) against the truth, mean ± std
over seeds, and the fit and predict seconds (``time.process_time``, torch on one thread).

Two training-free baselines, read per seed on the same held-back cells:

- ``params``: the parameter count of the cell's network. NASLib's published scores
  (``nb201_zc_cifar10_subset.csv``) cover only 724 cells, about 46 of 1,000 random ones, so it
  is computed from the space instead, exactly: a cell's count is that of the network without
  ops plus each edge's op's own parameters (measured once per edge and op on built networks);
  the script checks these counts against NASLib's on its 724 cells and prints the largest
  difference.
- ``synflow``: NASLib's published scores, which exist only for the held-back cells among those
  724 (the ``cells`` column says how many per seed, on average): on so few cells its
  correlations are far noisier than the others', and computing synflow for 1,000 cells per
  seed on a CPU would take longer than everything else here.

    python benchmarks/predictor_correlations.py [--predictors mlp-ensemble gcn renas gp params
        synflow] [--sizes 10 25 50 100 200 424] [--seeds 10] [--held-out 1000] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from archsearch.estimators.tabular import TabularEstimator
from archsearch.nn.ops import count_params_m
from archsearch.registry import PREDICTORS, SPACES
from archsearch.spaces.base import SearchSpace
from archsearch.spaces.nb201 import EDGES, OPS, NB201Cell

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BASELINES = ("params", "synflow")


def params_counter(space: SearchSpace) -> dict[tuple[int, str], float]:
    """(edge, op) -> that op's parameters (millions) on that edge in all the network's cells;
    (-1, "") -> the network with no op at all."""
    empty = ("none",) * len(EDGES)
    base = count_params_m(space.build(NB201Cell(empty)))
    extra = {(-1, ""): base}
    for e in range(len(EDGES)):
        for op in OPS[1:]:
            ops = list(empty)
            ops[e] = op
            extra[(e, op)] = count_params_m(space.build(NB201Cell(tuple(ops)))) - base
    return extra


def params_m(cell: NB201Cell, counter: dict[tuple[int, str], float]) -> float:
    return counter[(-1, "")] + sum(counter.get((e, op), 0.0) for e, op in enumerate(cell.ops))


def correlations(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    return float(spearmanr(predicted, truth)[0]), float(kendalltau(predicted, truth)[0])


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean and standard deviation over seeds; a seed whose predictions were all equal (an
    undefined correlation) is left out of the correlations' and counted."""
    out: dict[str, float] = {"seeds": len(rows)}
    for key in ("spearman", "kendall", "fit_s", "predict_s", "cells"):
        values = np.array([r[key] for r in rows], dtype=np.float64)
        values = values[np.isfinite(values)]
        out[f"{key}_mean"] = float(values.mean()) if len(values) else float("nan")
        out[f"{key}_std"] = float(values.std()) if len(values) else float("nan")
    out["undefined"] = int(sum(not np.isfinite(r["spearman"]) for r in rows))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--predictors", nargs="+",
                   default=["mlp-ensemble", "gcn", "renas", "gp", "params", "synflow"])
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 25, 50, 100, 200, 424])
    p.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1")
    p.add_argument("--held-out", type=int, default=1000)
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(1)
    space = SPACES.create("nb201")
    data = Path(args.data)
    truth = TabularEstimator(data / "nb201_cifar10.csv", "cifar10_test_acc_200ep").values()
    names = sorted(truth)
    cells: dict[str, NB201Cell] = {a: space.parse(a) for a in names}
    with open(data / "nb201_zc_cifar10_subset.csv") as f:
        published = {r["arch_str"]: r for r in csv.DictReader(f)}
    counter = params_counter(space)
    gap = max(abs(params_m(cells[a], counter) - float(r["params"])) for a, r in published.items())
    print(f"params from the space vs NASLib's on its {len(published)} cells: largest "
          f"difference {gap:.2e} M")

    per_seed: dict[tuple[str, int], list[dict[str, float]]] = {}
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(len(names))
        held = [names[i] for i in order[:args.held_out]]
        pool = [names[i] for i in order[args.held_out:args.held_out + max(args.sizes)]]
        held_truth = np.array([truth[a] for a in held])
        for name in args.predictors:
            if name in BASELINES:
                start = time.process_time()
                scored = [a for a in held if name == "params" or a in published]
                if name == "params":
                    score = np.array([params_m(cells[a], counter) for a in scored])
                else:
                    score = np.array([float(published[a][name]) for a in scored])
                seconds = time.process_time() - start
                rho, tau = correlations(score, np.array([truth[a] for a in scored]))
                per_seed.setdefault((name, 0), []).append(
                    {"spearman": rho, "kendall": tau, "fit_s": 0.0, "predict_s": seconds,
                     "cells": len(scored)})
                continue
            for size in args.sizes:
                train = pool[:size]
                model = PREDICTORS.create(name, space=space, seed=seed)
                start = time.process_time()
                model.fit([cells[a] for a in train], [truth[a] for a in train])
                fit_s = time.process_time() - start
                start = time.process_time()
                predicted, _ = model.predict([cells[a] for a in held])
                predict_s = time.process_time() - start
                rho, tau = correlations(predicted, held_truth)
                per_seed.setdefault((name, size), []).append(
                    {"spearman": rho, "kendall": tau, "fit_s": fit_s, "predict_s": predict_s,
                     "cells": len(held)})
        print(f"seed {seed} done ({time.process_time():.0f} s of CPU so far)", flush=True)

    results = []
    print(f"\n{args.seeds} seeds; held-back cells: {args.held_out} random NB201 cells per seed; "
          "truth: CIFAR-10 200-epoch test accuracy\n")
    print("| predictor | train | cells | Spearman | Kendall tau | fit s | predict s |")
    print("|---|---:|---:|---|---|---:|---:|")
    for (name, size), rows in per_seed.items():
        s = summary(rows)
        results.append({"predictor": name, "size": size, **s, "per_seed": rows})
        flag = f" ({s['undefined']} undefined)" if s["undefined"] else ""
        print(f"| {name} | {size if size else '-'} | {s['cells_mean']:.0f} | "
              f"{s['spearman_mean']:.3f} ± {s['spearman_std']:.3f}{flag} | "
              f"{s['kendall_mean']:.3f} ± {s['kendall_std']:.3f} | {s['fit_s_mean']:.2f} | "
              f"{s['predict_s_mean']:.3f} |")
    if args.json:
        config = {k: v for k, v in vars(args).items() if k != "json"}
        Path(args.json).write_text(json.dumps({"config": config, "params_gap_m": gap,
                                               "results": results}, indent=2))


if __name__ == "__main__":
    main()
