"""Training-free search on NAS-Bench-201 (the EPE-NAS / NASWOT protocol): sample N cells, keep
the one the proxy scores highest, report its ground-truth accuracy; 500 runs per (proxy, N).

Reads the per-cell scores written by ``archsearch score --json`` (a scored pool of cells, ideally
all 15,625; a uniform or stratified pool of >= 1,000 approximates sampling from the space) and
the NB201 ground truth. Seconds per run = N x the proxy's measured seconds per cell.

    python benchmarks/training_free_search.py SCORES.json [--runs 500] [--n 10 100]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scores")
    p.add_argument("--proxies", nargs="+", default=["epe_nas", "naswot", "synflow", "jacob_cov"])
    p.add_argument("--n", type=int, nargs="+", default=[10, 100])
    p.add_argument("--runs", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truth", default=str(DATA / "nb201_cifar10.csv"))
    p.add_argument("--json")
    args = p.parse_args()
    report = json.loads(Path(args.scores).read_text())
    truth = {r["arch_str"]: float(r["cifar10_test_acc_200ep"])
             for r in csv.DictReader(open(args.truth))}
    archs = list(report["scores"])
    acc = np.array([truth[a] for a in archs])
    rng = np.random.default_rng(args.seed)
    out = {"pool": len(archs), "runs": args.runs, "results": {}}
    print(f"pool of {len(archs)} scored cells; {args.runs} runs each; ground truth: CIFAR-10 "
          "200-epoch test accuracy")
    print(f"{'proxy':10} {'N':>4} {'accuracy':>15} {'s/run':>8}")
    for proxy in args.proxies + ["random"]:
        if proxy != "random" and proxy not in report["proxies"]:
            continue
        score = (np.array([report["scores"][a][proxy] for a in archs]) if proxy != "random"
                 else rng.random(len(archs)))
        per_arch = report["proxies"].get(proxy, {}).get("seconds_per_arch", 0.0)
        for n in args.n:
            picks = [acc[idx[np.argmax(score[idx])]] for idx in
                     (rng.choice(len(archs), size=min(n, len(archs)), replace=False)
                      for _ in range(args.runs))]
            mean, std = float(np.mean(picks)), float(np.std(picks))
            out["results"][f"{proxy}@{n}"] = {"mean": mean, "std": std,
                                              "seconds_per_run": n * per_arch}
            print(f"{proxy:10} {n:>4} {mean:8.2f} ± {std:4.2f} {n * per_arch:8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
