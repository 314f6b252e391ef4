"""How many degenerate cells each NAS-Bench-201 cell set holds, and what they do to a proxy's
rank correlation.

A cell is *degenerate* here when its output is disconnected from its input: no path from node 0
to node 3 along edges whose op is not ``none`` (decided from the cell string alone). Such a
network's output ignores the image, so it sits at chance; as a cross-check the script counts
the cells whose ground-truth 200-epoch CIFAR-10 test accuracy is at most ``--chance`` (10.5 by
default; chance is 10.0) and how many cells the two definitions share.

The sets: the whole space (15,625 cells, ``nb201_cifar10.csv``), NASLib's 724-cell file
(``nb201_zc_cifar10_subset.csv``, the cells of the same-cell comparison in BENCHMARKS.md) and,
given a JSON of ``archsearch score``, the cells it scored (by default our stratified 1,000-cell
pool, ``benchmarks/results/zc_nb201_1000.json``). For a sample of the set's size drawn uniformly
from the space, the binomial probability of holding at most the observed number of degenerate
cells says whether a set could be a uniform sample. For the scored pool, each proxy's Spearman
correlation with the ground truth is given over all its cells and over its non-degenerate ones:
how much the share of degenerate cells alone moves a correlation.

    python benchmarks/nb201_degenerate_cells.py [--scores benchmarks/results/zc_nb201_1000.json]
        [--data ../shared/data] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from scipy.stats import binom, spearmanr

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POOL = Path(__file__).resolve().parent / "results" / "zc_nb201_1000.json"


def edges(arch_str: str) -> list[tuple[int, int, str]]:
    """(from node, to node, op) of an NB201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    out = []
    for to_node, group in enumerate(arch_str.strip("|").split("|+|"), start=1):
        for token in group.split("|"):
            op, _, src = token.partition("~")
            out.append((int(src), to_node, op))
    if len(out) != 6:
        raise ValueError(f"not an NB201 cell string: {arch_str!r}")
    return out


def degenerate(arch_str: str) -> bool:
    """Whether no path of non-``none`` edges leads from the input (node 0) to the output (3)."""
    reached = {0}
    for src, dst, op in sorted(edges(arch_str), key=lambda e: e[1]):  # topological: by target
        if op != "none" and src in reached:
            reached.add(dst)
    return 3 not in reached


def describe(name: str, cells: list[str], truth: dict[str, float], chance: float,
             share_in_space: float | None) -> dict:
    graph = {a for a in cells if degenerate(a)}
    at_chance = {a for a in cells if truth[a] <= chance}
    row = {"set": name, "cells": len(cells), "degenerate": len(graph),
           "degenerate_percent": 100 * len(graph) / len(cells),
           "at_chance": len(at_chance), "both": len(graph & at_chance)}
    if share_in_space is not None:
        row["p_at_most_this_many_if_uniform"] = float(
            binom.cdf(len(graph), len(cells), share_in_space))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--scores", default=str(POOL), help="JSON of archsearch score ('' for none)")
    p.add_argument("--chance", type=float, default=10.5,
                   help="ground truth at or below this counts as chance accuracy")
    p.add_argument("--json", help="write the counts and correlations here")
    args = p.parse_args()
    data = Path(args.data)
    with open(data / "nb201_cifar10.csv") as f:
        truth = {r["arch_str"]: float(r["cifar10_test_acc_200ep"]) for r in csv.DictReader(f)}
    with open(data / "nb201_zc_cifar10_subset.csv") as f:
        naslib = [r["arch_str"] for r in csv.DictReader(f)]
    space = describe("whole space", list(truth), truth, args.chance, None)
    share = space["degenerate"] / space["cells"]
    rows = [space, describe("NASLib's 724-cell file", naslib, truth, args.chance, share)]
    report: dict = {"definition": "output disconnected from the input (no path of non-none "
                                  "edges from node 0 to node 3)", "chance": args.chance,
                    "sets": rows}
    pool: dict = {}
    if args.scores:
        pool = json.loads(Path(args.scores).read_text())["scores"]
        rows.append(describe(f"scored pool ({Path(args.scores).name})", list(pool), truth,
                             args.chance, share))
    print(f"degenerate: {report['definition']}; at chance: ground truth <= {args.chance}")
    print(f"{'set':42} {'cells':>6} {'degenerate':>11} {'%':>6} {'at chance':>9} {'both':>5} "
          f"{'P(<= if uniform)':>16}")
    for r in rows:
        prob = r.get("p_at_most_this_many_if_uniform")
        print(f"{r['set']:42} {r['cells']:>6} {r['degenerate']:>11} "
              f"{r['degenerate_percent']:>6.2f} {r['at_chance']:>9} {r['both']:>5} "
              f"{'' if prob is None else f'{prob:.2g}':>16}")
    if pool:
        cells = list(pool)
        kept = [a for a in cells if not degenerate(a)]
        proxies = list(next(iter(pool.values())))
        report["pool_spearman_vs_test"] = {}
        print(f"scored pool: Spearman vs test accuracy, all {len(cells)} cells / the "
              f"{len(kept)} non-degenerate ones")
        for name in proxies:
            every = float(spearmanr([pool[a][name] for a in cells],
                                    [truth[a] for a in cells]).statistic)
            live = float(spearmanr([pool[a][name] for a in kept],
                                   [truth[a] for a in kept]).statistic)
            report["pool_spearman_vs_test"][name] = {"all": every, "non_degenerate": live}
            print(f"  {name:10} {every:.3f} / {live:.3f} ({live - every:+.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
