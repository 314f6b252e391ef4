"""Our zero-cost scores beside NASLib's published per-cell scores for the same NB201 cells.

Input: the JSON of ``archsearch score ... --benchmark ../shared/data/nb201_zc_cifar10_subset.csv
--metric val_accuracy --archs all --json OUT`` (every cell of NASLib's 724-cell file). Prints,
per proxy, the Spearman rank correlation of our score with NASLib's, and of each with NASLib's
``val_accuracy`` (the metric of the published correlations) and with the NB201 200-epoch test
accuracy (``nb201_cifar10.csv``, the metric of our 1,000-cell benchmark), so that differences of
sample and metric can be told apart from differences of implementation. With ``--other-seed
JSON`` (the same command with ``--seed 1``, on some of the cells), also our agreement with
ourselves under another initialisation and minibatch: the yardstick for the agreement with
NASLib, whose networks had their own initialisation and images.

    python benchmarks/zero_cost_vs_naslib.py OUT.json [--other-seed OUT1.json]
        [--data ../shared/data] [--json SUMMARY]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from scipy.stats import spearmanr

NASLIB_NAMES = {"jacob_cov": "jacov", "naswot": "nwot"}  # ours -> NASLib's column
PUBLISHED = {"synflow": 0.74, "jacob_cov": 0.73, "snip": 0.60, "grad_norm": 0.59,
             "grasp": 0.51, "fisher": 0.36}  # Abdelfattah et al. 2021, NB201 CIFAR-10


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scores", help="JSON written by archsearch score --json")
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--other-seed", help="scores of (some of) the same cells under another seed")
    p.add_argument("--json", help="write the table as JSON here")
    args = p.parse_args()
    ours = json.loads(Path(args.scores).read_text())["scores"]
    with open(Path(args.data) / "nb201_zc_cifar10_subset.csv") as f:
        naslib = {r["arch_str"]: r for r in csv.DictReader(f)}
    with open(Path(args.data) / "nb201_cifar10.csv") as f:
        test_acc = {r["arch_str"]: float(r["cifar10_test_acc_200ep"]) for r in csv.DictReader(f)}
    cells = [a for a in ours if a in naslib]
    val = [float(naslib[a]["val_accuracy"]) for a in cells]
    test = [test_acc[a] for a in cells]
    proxies = list(next(iter(ours.values())))
    other = json.loads(Path(args.other_seed).read_text())["scores"] if args.other_seed else {}
    both = [a for a in cells if a in other]

    def rho(a: list[float], b: list[float]) -> float:
        return float(spearmanr(a, b).statistic)

    summary: dict[str, dict[str, float | None]] = {}
    print(f"{len(cells)} cells in both; Spearman rank correlations")
    print(f"{'proxy':10s} {'ours~NASLib':>11s} {'ours~val':>9s} {'NASLib~val':>10s} "
          f"{'published':>9s} {'ours~test':>9s} {'NASLib~test':>11s}"
          + (f" | on {len(both)}: {'seed0~seed1':>11s} {'ours~NASLib':>11s}" if both else ""))
    for name in proxies:
        column = NASLIB_NAMES.get(name, name)
        mine = [ours[a][name] for a in cells]
        entry: dict[str, float | None] = {"ours_vs_val": rho(mine, val),
                                          "ours_vs_test": rho(mine, test),
                                          "published": PUBLISHED.get(name)}
        if column in naslib[cells[0]]:
            theirs = [float(naslib[a][column]) for a in cells]
            entry.update(agreement=rho(mine, theirs), naslib_vs_val=rho(theirs, val),
                         naslib_vs_test=rho(theirs, test))
        if both:
            entry["seed_agreement"] = rho([ours[a][name] for a in both],
                                          [other[a][name] for a in both])
            if column in naslib[cells[0]]:
                entry["agreement_same_cells"] = rho([ours[a][name] for a in both],
                                                    [float(naslib[a][column]) for a in both])
        summary[name] = entry

        def fmt(key: str, entry: dict[str, float | None] = entry) -> str:
            v = entry.get(key)
            return "-" if v is None else f"{v:.3f}"

        print(f"{name:10s} {fmt('agreement'):>11s} {fmt('ours_vs_val'):>9s} "
              f"{fmt('naslib_vs_val'):>10s} {fmt('published'):>9s} {fmt('ours_vs_test'):>9s} "
              f"{fmt('naslib_vs_test'):>11s}"
              + (f" | {'':{len(str(len(both))) + 4}s}{fmt('seed_agreement'):>11s} "
                 f"{fmt('agreement_same_cells'):>11s}" if both else ""))
    if args.json:
        report = {"n_cells": len(cells), "n_cells_other_seed": len(both), "proxies": summary}
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
