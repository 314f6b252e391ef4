"""SPOS on NAS-Bench-201 with the 10,000-image CIFAR-10 sample, judged by the ground truth.

For each seed, a run of ``--method spos`` (the library's ``Run``, as ``archsearch search``
does it): the NB201 supernet trains on single paths drawn uniformly over isomorphism classes
(8,000 training images of ``../shared/data/cifar10_train10k.npz``; the other 2,000 validate),
then regularized evolution scores ``--trials`` cells on the trained supernet, each with its
BatchNorm statistics recalibrated on training batches. Reported: the answer's 200-epoch
CIFAR-10 test accuracy in ``nb201_cifar10.csv``, and the Kendall tau between the trained
supernet's scores (the same estimator the evolution used) and the ground truth over ``--probe``
random cells (a fixed sample).

    python benchmarks/spos_nb201.py --seeds 0 1 2 --epochs 30 [--json out.json] [--runs DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from archsearch.estimators.tabular import TabularEstimator
from archsearch.registry import ESTIMATORS, SPACES
from archsearch.run import Run, RunConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--trials", type=int, default=100, help="evolution's candidates")
    p.add_argument("--probe", type=int, default=200, help="random cells for the Kendall tau")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=1, help="cells per stage of the supernet")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--calibration-batches", type=int, default=20)
    p.add_argument("--data", default=str(DATA / "cifar10_train10k.npz"))
    p.add_argument("--runs", default="runs/spos_nb201", help="folder of the seeds' run folders")
    p.add_argument("--json")
    args = p.parse_args()
    truth = TabularEstimator(DATA / "nb201_cifar10.csv", "cifar10_test_acc_200ep").values()
    space = SPACES.create("nb201")
    rng = np.random.default_rng(12345)
    probe = [space.sample(rng) for _ in range(args.probe)]
    results = []
    for seed in args.seeds:
        start = time.perf_counter()
        config = RunConfig(
            method="spos", space="nb201", data=args.data, seed=seed, epochs=args.epochs,
            baseline_random=0,
            method_options={"search_trials": args.trials,
                            "calibration_batches": args.calibration_batches},
            estimator_options={"supernet": {"channels": args.channels,
                                            "cells_per_stage": args.cells},
                               "batch_size": args.batch_size, "test_fraction": 0.0})
        folder = Path(args.runs) / f"seed{seed}"
        run = Run.resume(folder) if (folder / "trials.db").exists() else \
            Run.create(folder, config)
        try:
            answer = run.search()
            section = {k: v for k, v in run.resolved["estimator"].items()
                       if k not in ("name", "epochs", "eval_batches")}  # the whole val split
        finally:
            run.close()
        search_seconds = time.perf_counter() - start
        scorer = ESTIMATORS.create("supernet-checkpoint", space=space,
                                   checkpoint=str(folder / "spos.pt"),
                                   calibration_batches=args.calibration_batches, **section)
        scores = [scorer.evaluate(a).objective for a in probe]
        tau = kendalltau(scores, [truth[a.to_str()] for a in probe]).statistic
        row = {"seed": seed, "answer": answer, "truth": truth[answer],
               f"kendall_tau_{args.probe}": float(tau),
               "search_seconds": round(search_seconds, 1),
               "probe_seconds": round(time.perf_counter() - start - search_seconds, 1)}
        results.append(row)
        print(json.dumps(row), flush=True)
    accs = [r["truth"] for r in results]
    taus = [r[f"kendall_tau_{args.probe}"] for r in results]
    print(f"SPOS answers' NB201 test accuracy: {np.mean(accs):.2f} ± {np.std(accs):.2f} over "
          f"{len(accs)} seeds; Kendall tau ({args.probe} random cells) {np.mean(taus):.3f} ± "
          f"{np.std(taus):.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": vars(args), "runs": results,
                                               "truth_mean": float(np.mean(accs)),
                                               "truth_std": float(np.std(accs)),
                                               "tau_mean": float(np.mean(taus))}, indent=2))


if __name__ == "__main__":
    main()
