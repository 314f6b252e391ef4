"""Differentiable search on NAS-Bench-201 with the 10,000-image CIFAR-10 sample, judged by the
ground truth: DARTS, its levers against the collapse, GDAS, SNAS, PC-DARTS and DARTS+.

For each variant and seed, a run of the library's ``Run`` (as ``archsearch search --method M
--space nb201`` does it) on ``../shared/data/cifar10_train10k.npz`` (no test split: the methods'
presets split the rest, DARTS-family half for the weights and half for alpha; SNAS, single
level, trains the weights and alpha on the training part). The supernet is NB201's (all 5 ops
on each of the 6 edges) at the scale given by ``--channels`` and ``--cells`` (cells per stage),
for ``--epochs`` epochs, with each method's official optimiser settings (``archsearch methods
M``). Reported per run: the derived cell of the last epoch (of the stopping epoch for DARTS+),
its 200-epoch CIFAR-10 test accuracy in ``nb201_cifar10.csv``, whether it is parameter-free (no
convolution on a path from the input to the output: the table's ``unique_str`` names none),
whether it is disconnected (no path from the input to the output at all: a constant output,
10%), its skip connections, and the same per epoch.

Variants (``--variants``): ``darts`` (first order, the method's defaults: BatchNorm on batch
statistics without affine parameters, as AutoDL's search cells), ``darts-bn-running`` (the
lever taken away: BatchNorm with running statistics and affine parameters, PyTorch's default),
``darts-beta`` (beta-DARTS' regulariser, ``beta_decay=24.5``: the official schedule's value at
its last epoch), ``darts-robust`` (the two together that make DARTS on NB201 not collapse here:
``beta_decay=24.5`` and ``none_in_derive=false``, so its answer is the run's own), ``darts-plus``
(DARTS+ early stopping; ``stable_epochs=3`` on short runs),
``darts-2nd`` (second order), ``gdas``, ``snas``, ``pc-darts`` (K=4). The derive's
levers, the skip cap (``--method-opt max_skips=K`` of DARTS) and ``none`` left out of the argmax
(``none_in_derive=false``), change only the derived cell, not the training, so they are read off
the last alpha of each DARTS-derived run (``space.derive_capped``, ``space.derive(...,
include_none=False)``) for K = 1 and 2, alone and together; a run with the options derives the
same cell (tests/oneshot/test_darts.py). The last softmax(alpha) is kept in the JSON
(``last_weights``, 6 edges x the 5 ops in ``OPS`` order) so that any other derive can be read
off later.

``--arch-start-epoch N`` gives the DARTS and DARTS+ variants the warm-up lever
(``arch_start_epoch=N``: the weights train alone for N epochs before alpha's first step).
``--alpha-lr-scale S`` multiplies every method's architecture learning rate (its resolved
``alpha_lr``; PC-DARTS' beta shares it) by S: a compressed schedule. At the official rates
alpha barely moves in a CPU-sized search (a 10-epoch DARTS on 5,000 images takes 780 alpha
steps; the official NB201 search, 50 epochs on 25,000, about 19,500), so S = 20 lets alpha
travel about as far in Adam steps of size lr as it does there; the weights' training stays as
short as it is. A deviation from every official code, named in the results.

Runs go ``--workers`` at a time, one thread each; a run folder that exists is resumed, so an
interrupted benchmark continues where it stopped.

    python benchmarks/differentiable_nb201.py --seeds 0 1 2 --epochs 10 [--json out.json]
    python benchmarks/differentiable_nb201.py --channels 8 --alpha-lr-scale 20 \
        --runs runs/differentiable_nb201_c8_x20 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# variant -> (method, method options, estimator options besides the supernet's size)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "darts": ("darts", {}, {}),
    "darts-bn-running": ("darts", {}, {"bn_affine": True, "bn_track": True}),
    "darts-beta": ("darts", {"beta_decay": 24.5}, {}),
    "darts-robust": ("darts", {"beta_decay": 24.5, "none_in_derive": False}, {}),
    "darts-plus": ("darts-plus", {"stable_epochs": 3}, {}),
    "darts-2nd": ("darts", {"order": 2}, {}),
    "gdas": ("gdas", {}, {}),
    "snas": ("snas", {}, {}),
    "pc-darts": ("pc-darts", {}, {}),
}
DEFAULT_VARIANTS = ("darts", "gdas", "pc-darts", "snas", "darts-beta", "darts-plus",
                    "darts-bn-running")
CAPS = (1, 2)
# variants whose last alpha is read again by the derive's levers (DARTS' own derive options)
DERIVE_LEVERS = ("darts", "darts-beta", "darts-robust", "darts-plus", "darts-bn-running",
                 "darts-2nd")
LEVER_NAMES = {f"capped_{c}": f"skip cap {c}" for c in CAPS} | {
    "no_none": "none left out"} | {f"no_none_capped_{c}": f"none left out, skip cap {c}"
                                   for c in CAPS}


def load_truth() -> tuple[dict[str, float], dict[str, str]]:
    import csv

    acc, unique = {}, {}
    with open(DATA / "nb201_cifar10.csv") as f:
        for row in csv.DictReader(f):
            acc[row["arch_str"]] = float(row["cifar10_test_acc_200ep"])
            unique[row["arch_str"]] = row["unique_str"]
    return acc, unique


def one_run(variant: str, seed: int, args: dict[str, Any]) -> dict[str, Any]:
    """Search with ``variant`` and ``seed`` (resuming its folder); the derived cells."""
    import torch

    torch.set_num_threads(1)
    from archsearch.registry import SPACES
    from archsearch.run import Run, RunConfig
    from archsearch.run.config import resolve

    method, method_options, estimator_options = VARIANTS[variant]
    if args["alpha_lr_scale"] != 1:
        method_options = {**method_options, "alpha_lr": args["alpha_lr_scale"] * resolve(
            RunConfig(method=method, space="nb201"))["method"]["alpha_lr"]}
    if args["arch_start_epoch"] and method in ("darts", "darts-plus"):
        method_options = {**method_options, "arch_start_epoch": args["arch_start_epoch"]}
    supernet = {"channels": args["channels"], "cells_per_stage": args["cells"]}
    if method == "pc-darts":
        supernet["partial_channels"] = 4  # the preset's K, repeated as a given supernet must
    config = RunConfig(
        method=method, space="nb201", data=args["data"], seed=seed, epochs=args["epochs"],
        baseline_random=0, method_options=method_options,
        estimator_options={"supernet": supernet, "test_fraction": 0.0, **estimator_options})
    folder = Path(args["runs"]) / variant / f"seed{seed}"
    start = time.perf_counter()
    run = Run.resume(folder) if (folder / "trials.db").exists() else Run.create(folder, config)
    try:
        answer = run.search()
        epochs = run.epochs()
    finally:
        run.close()
    row: dict[str, Any] = {"variant": variant, "seed": seed, "answer": answer,
                           "epochs_run": len(epochs),
                           "stopped_by": epochs[-1].get("stopped_by") if epochs else None,
                           "per_epoch": [e["derived"] for e in epochs],
                           "seconds": round(time.perf_counter() - start, 1)}
    if variant in DERIVE_LEVERS:  # the derive's levers, read off the last alpha
        state = torch.load(folder / f"{method}.pt", map_location="cpu", weights_only=False)
        weights = list(torch.softmax(state["alphas"][0], dim=-1))
        row["last_weights"] = [[round(float(x), 5) for x in w] for w in weights]
        row |= derived_by_levers(SPACES.create("nb201"), weights)
    return row


def derived_by_levers(space: Any, weights: list[Any]) -> dict[str, str]:
    """The cells the derive's levers make of one alpha: the skip cap (``max_skips``), ``none``
    left out (``none_in_derive=False``), and both."""
    cells = {}
    for include_none in (True, False):
        prefix = "" if include_none else "no_none_"
        if not include_none:
            cells["no_none"] = space.derive(weights, include_none=False).to_str()
        for cap in CAPS:
            cells[f"{prefix}capped_{cap}"] = space.derive_capped(
                weights, cap, include_none=include_none).to_str()
    return cells


def judge(arch: str, acc: dict[str, float], unique: dict[str, str]) -> dict[str, Any]:
    return {"truth": acc[arch], "parameter_free": "conv" not in unique[arch],
            "disconnected": not reaches_output(arch), "skips": arch.count("skip_connect")}


def reaches_output(arch: str) -> bool:
    """Whether a path of edges that are not ``none`` leads from the cell's input to its output
    (``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: node j's incoming edges, from node i)."""
    reached = {0}
    for j, node in enumerate(arch.strip("|").split("|+|"), start=1):
        if any(op != "none" and int(i) in reached
               for op, i in (edge.split("~") for edge in node.split("|"))):
            reached.add(j)
    return 3 in reached


def summary(name: str, judged: list[dict[str, Any]]) -> dict[str, Any]:
    accs = [j["truth"] for j in judged]
    return {"variant": name, "seeds": len(accs), "mean": float(np.mean(accs)),
            "std": float(np.std(accs)), "min": float(np.min(accs)),
            "parameter_free": sum(j["parameter_free"] for j in judged),
            "disconnected": sum(j["disconnected"] for j in judged),
            "skips": [j["skips"] for j in judged]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=VARIANTS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=1, help="cells per stage of the supernet")
    p.add_argument("--alpha-lr-scale", type=float, default=1.0,
                   help="every method's architecture learning rate times this (a compressed "
                        "schedule: alpha moves in few epochs as far as in the official many)")
    p.add_argument("--arch-start-epoch", type=int, default=0,
                   help="DARTS' and DARTS+'s warm-up: epochs of weights alone before alpha's "
                        "first step (0: none, the methods' default)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data", default=str(DATA / "cifar10_train10k.npz"))
    p.add_argument("--runs", default="runs/differentiable_nb201")
    p.add_argument("--json")
    args = p.parse_args()
    acc, unique = load_truth()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    jobs = [(v, s) for v in args.variants for s in args.seeds]  # variant by variant
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(one_run, v, s, vars(args)) for v, s in jobs]
        for future in futures:
            row = future.result()
            row |= judge(row["answer"], acc, unique)
            row["per_epoch_truth"] = [acc[a] for a in row["per_epoch"]]
            row["per_epoch_skips"] = [a.count("skip_connect") for a in row["per_epoch"]]
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if not k.startswith("per_epoch")}),
                  flush=True)
    table = []
    for v in args.variants:
        mine = [r for r in rows if r["variant"] == v]
        table.append(summary(v, mine))
        if v in DERIVE_LEVERS:
            for key, lever in LEVER_NAMES.items():
                table.append(summary(f"{v}, {lever}", [judge(r[key], acc, unique)
                                                         for r in mine]))
    print(f"\nNB201 supernet {args.channels} channels, {args.cells} cell(s) per stage, "
          f"{args.epochs} epochs, alpha's learning rate x{args.alpha_lr_scale:g}, warm-up "
          f"{args.arch_start_epoch} epochs, seeds {args.seeds}")
    print("| variant | test acc. (mean ± std) | min | parameter-free | no path to the output "
          "| skips per seed |")
    print("|---|---|---|---|---|---|")
    for t in table:
        print(f"| {t['variant']} | {t['mean']:.2f} ± {t['std']:.2f} | {t['min']:.2f} | "
              f"{t['parameter_free']} of {t['seeds']} | {t['disconnected']} of {t['seeds']} "
              f"| {t['skips']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": vars(args), "runs": rows,
                                               "table": table}, indent=2))


if __name__ == "__main__":
    main()
