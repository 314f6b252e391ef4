"""The defaults a new user gets: ``archsearch search`` with no options, judged.

Two jobs, each for several seeds, run as a user would type them (a subprocess per run):

- ``main``: ``archsearch search --seed S`` (ENAS over the micro space on the embedded digits,
  then the derived cell and 3 random cells retrained under one protocol);
- ``nb201``: ``archsearch search --space nb201 --strategy enas --data
  ../shared/data/cifar10_sample.npz --seed S`` (the derived cell judged by NB201's ground
  truth, ``nb201_cifar10.csv``; the final retraining on the sample is reported too).

For each run: the derived architecture, whether it is parameter-free (no convolution in the
cell, or in either ENAS cell: the collapse), its final test accuracy beside the random cells'
mean, the ground truth (nb201: the derived cell's and the random cells' mean) and the wall
time. A finished run is not repeated: its folder is reported again.

    python benchmarks/default_recipes.py --jobs main nb201 --seeds 0 1 2 [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
JOBS = {
    "main": [],
    "nb201": ["--space", "nb201", "--strategy", "enas", "--data",
              str(DATA / "cifar10_sample.npz")],
}


def parameter_free(arch: str) -> bool:
    """No convolution anywhere in the cell(s) (NB201's nor_conv, ENAS's sep_conv)."""
    return "conv" not in arch


def show(folder: Path) -> dict:
    """``archsearch show FOLDER --json``."""
    return json.loads(subprocess.run(
        [sys.executable, "-m", "archsearch", "show", str(folder), "--json"],
        capture_output=True, text=True, check=True).stdout)


def mean_or_none(values: list[float | None]) -> float | None:
    """The mean, or None where any value is missing (a space without a table)."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", nargs="+", default=list(JOBS), choices=list(JOBS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--runs", default="runs/defaults")
    p.add_argument("--json")
    args = p.parse_args()
    with open(DATA / "nb201_cifar10.csv") as f:
        truth = {r["arch_str"]: float(r["cifar10_test_acc_200ep"]) for r in csv.DictReader(f)}
    rows = []
    for job in args.jobs:
        for seed in args.seeds:
            folder = Path(args.runs) / f"{job}-seed{seed}"
            shown = show(folder) if (folder / "trials.db").exists() else None
            seconds = None  # a run finished before this call is reported without a time
            if shown is None or not (shown.get("final") or {}).get("best"):
                start = time.perf_counter()
                cmd = [sys.executable, "-m", "archsearch", "search", *JOBS[job], "--seed",
                       str(seed), "--run", str(folder), "--no-progress"]
                if shown is not None:
                    cmd.append("--resume")
                out = subprocess.run(cmd, check=False, capture_output=True, text=True)
                seconds = round(time.perf_counter() - start, 1)
                if out.returncode != 0:
                    print(out.stdout[-2000:], out.stderr[-2000:], file=sys.stderr)
                    raise SystemExit(f"{job} seed {seed} failed")
                shown = show(folder)
            final = shown["final"]
            row = {"job": job, "seed": seed, "derived": shown["best_arch"],
                   "parameter_free": parameter_free(shown["best_arch"]),
                   "best_test_acc": final["best"]["metrics"]["test_acc"],
                   "random_test_acc": final["random_mean"]["test_acc"],
                   "best_params_m": final["best"]["metrics"]["params_m"],
                   "random_params_m": final["random_mean"]["params_m"],
                   "truth": truth.get(shown["best_arch"]),
                   "random_truth": mean_or_none([truth.get(r["arch"]) for r in final["random"]]),
                   "seconds": seconds}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for job in args.jobs:
        mine = [r for r in rows if r["job"] == job]
        free = sum(r["parameter_free"] for r in mine)
        line = (f"{job}: {free} of {len(mine)} derived cells parameter-free; retrained test acc "
                f"{sum(r['best_test_acc'] for r in mine) / len(mine):.4f} vs random "
                f"{sum(r['random_test_acc'] for r in mine) / len(mine):.4f}")
        if all(r["truth"] is not None for r in mine):
            line += f"; NB201 truth {sum(r['truth'] for r in mine) / len(mine):.2f}"
        if all(r["random_truth"] is not None for r in mine):
            line += (f" (random cells "
                     f"{sum(r['random_truth'] for r in mine) / len(mine):.2f})")
        timed = [r["seconds"] for r in mine if r["seconds"] is not None]
        if timed:
            line += f"; {sum(timed) / len(timed):.0f} s per run timed here"
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
