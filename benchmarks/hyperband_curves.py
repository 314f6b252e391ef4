"""Hyperband against random search at equal total epochs, on 200 real NB201 learning curves.

The space is the 200 cells of ``../shared/data/nb201_cifar10_valid_curves200.csv`` (NB201's
cifar10-valid 200-epoch runs, validation accuracy after every epoch, mean over seeds). A trial
at a budget of e epochs observes the validation accuracy at epoch e of its 200-epoch schedule
(the tabular estimator with ``fidelity_column="epoch"``) and costs e epochs (a promotion
restarts: Li et al.'s Hyperband; ``continued`` also reports the cost when a promotion
continues the lower rung, charging only the epochs added). Hyperband: eta 3, budgets 2 to 200
epochs (rounded: 2, 7, 22, 67, 200), one iteration of its 5 brackets; its answer is the best
cell observed at 200 epochs. Random search gets the same total epochs: total / 200 cells at
200 epochs, the best of them its answer. Both are judged by the answer's 200-epoch validation
accuracy and by its NB201 test accuracy (``nb201_cifar10.csv``), over many seeds.

    python benchmarks/hyperband_curves.py --seeds 100 [--json benchmarks/results/hyperband_curves.json]
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.errors import ArchitectureError
from archsearch.experiment.experiment import Experiment
from archsearch.registry import SPACES, Spec
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.spaces.nb201 import parse_nb201
from archsearch.strategies.hyperband import Hyperband
from archsearch.types import Decision

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CURVES = DATA / "nb201_cifar10_valid_curves200.csv"
CELLS: list[str] = []  # the table's cells, filled before the space is used


class TableSpace(SearchSpace):
    """The cells of a table as a space: one decision, which of them (NB201 strings)."""

    name = "nb201-curves200"

    def decisions(self) -> Sequence[Decision]:
        return (Decision("cell", len(CELLS)),)

    def decode(self, choices: Sequence[int]) -> Architecture:
        (i,) = self.check_choices(choices)
        return parse_nb201(CELLS[i])

    def encode(self, arch: Architecture) -> tuple[int, ...]:
        return (CELLS.index(arch.to_str()),)

    def parse(self, text: str) -> Architecture:
        if text not in CELLS:
            raise ArchitectureError(f"{text} is not one of the table's {len(CELLS)} cells")
        return parse_nb201(text)


SPACES.register(TableSpace.name)(TableSpace)


def load(path: Path) -> dict[str, dict[int, float]]:
    curves: dict[str, dict[int, float]] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            curves.setdefault(row["arch_str"], {})[int(row["epoch"])] = float(row["val_acc"])
    return curves


def hyperband_run(seed: int, estimator: Spec) -> dict[str, Any]:
    strategy = Hyperband(TableSpace(), seed=seed, min_budget=2, max_budget=200, iterations=1)
    records = Experiment(Spec(TableSpace.name), estimator, strategy).run()
    top = [r for r in records if r.budget.epochs == 200 and r.objective is not None]
    best = max(top, key=lambda r: r.objective)
    spent = sum(r.budget.epochs for r in records)
    trained: dict[str, float] = {}  # continuing promotions: each cell's largest budget
    for r in records:
        trained[r.arch] = max(trained.get(r.arch, 0.0), r.budget.epochs)
    return {"answer": best.arch, "epochs": spent, "epochs_continued": sum(trained.values()),
            "trials": len(records), "cells": len(trained)}


def random_run(seed: int, curves: dict[str, dict[int, float]], epochs: float) -> str:
    rng = np.random.default_rng([seed, 0xA11])
    n = max(1, int(epochs // 200))
    picks = rng.choice(len(CELLS), size=min(n, len(CELLS)), replace=False)
    return max((CELLS[int(i)] for i in picks), key=lambda a: curves[a][200])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--curves", default=str(CURVES))
    p.add_argument("--truth", default=str(DATA / "nb201_cifar10.csv"))
    p.add_argument("--json")
    args = p.parse_args()
    curves = load(Path(args.curves))
    CELLS[:] = sorted(curves)
    with open(args.truth) as f:
        test = {r["arch_str"]: float(r["cifar10_test_acc_200ep"]) for r in csv.DictReader(f)}
    estimator = Spec("tabular", {"benchmark": args.curves, "metric": "val_acc",
                                 "fidelity_column": "epoch"})
    rows = []
    for seed in range(args.seeds):
        hb = hyperband_run(seed, estimator)
        rs = random_run(seed, curves, hb["epochs"])
        rows.append({"seed": seed, **hb, "random_answer": rs,
                     "hyperband_val": curves[hb["answer"]][200], "random_val": curves[rs][200],
                     "hyperband_test": test[hb["answer"]], "random_test": test[rs]})
    summary = {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows])))
               for k in ("hyperband_val", "random_val", "hyperband_test", "random_test",
                         "epochs", "epochs_continued", "cells")}
    wins = sum(r["hyperband_val"] > r["random_val"] for r in rows)
    ties = sum(r["hyperband_val"] == r["random_val"] for r in rows)
    best = max(c[200] for c in curves.values())
    print(f"{args.seeds} seeds; one Hyperband iteration spends {summary['epochs'][0]:.0f} epochs "
          f"({summary['epochs_continued'][0]:.0f} if promotions continue), {summary['cells'][0]:.0f}"
          f" cells; random search gets {int(summary['epochs'][0] // 200)} cells at 200 epochs")
    for name in ("hyperband", "random"):
        print(f"  {name:9}: 200-epoch val acc {summary[name + '_val'][0]:.2f} ± "
              f"{summary[name + '_val'][1]:.2f}, NB201 test acc {summary[name + '_test'][0]:.2f}"
              f" ± {summary[name + '_test'][1]:.2f}")
    print(f"  Hyperband better on {wins}, tied on {ties}, worse on {args.seeds - wins - ties} "
          f"seeds; the table's best 200-epoch val acc: {best:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "wins": wins, "ties": ties,
                                               "table_best_val": best, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
