"""ENAS on the NAS-Bench-201 space with the CIFAR-10 sample, judged by the ground truth.

For each seed: run ENAS (supernet over NB201 cells, trained on 1,600 images of
../shared/data/cifar10_sample.npz, rewarded on the other 400), take the derived cell and look
up its 200-epoch CIFAR-10 test accuracy in ../shared/data/nb201_cifar10.csv. Then score 100
random cells (fixed sample) with the final supernet on all 400 validation images and report the
Kendall tau between those scores and the ground truth.

    python benchmarks/enas_nb201.py --seeds 0 1 2 --epochs 30 [--warmup 10] [--batch-size 64]
        [--reward accuracy|neg_loss] [--derive-batches 1]
        [--shared-sampling controller|uniform|uniform-iso]
        [--prior synflow [--prior-samples 1000]] [--json out.json] [--save DIR]

The best measured here (BENCHMARKS.md): --epochs 50 --warmup 10 --batch-size 16 --lr 0.025
--val-batch-size 64 --reward neg_loss --derive-batches 6 --shared-sampling uniform-iso
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.estimators.tabular import TabularEstimator
from archsearch.estimators.zero_cost.estimator import ZeroCostEstimator
from archsearch.oneshot.enas import ENAS, SHARED_SAMPLING, ENASConfig, enas_controller
from archsearch.spaces.nb201 import NB201Space

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=0, help="ENASConfig.warmup_epochs")
    p.add_argument("--controller-steps", type=int, default=10)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=1, help="cells per stage of the supernet")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--controller-lr", type=float, default=0.0035)
    p.add_argument("--reward", default="accuracy", choices=["accuracy", "neg_loss"],
                   help="the controller's reward on a validation minibatch (ENAS: accuracy)")
    p.add_argument("--derive-samples", type=int, default=32)
    p.add_argument("--derive-batches", type=int, default=1,
                   help="validation minibatches each derive candidate is scored on (ENAS: 1)")
    p.add_argument("--shared-sampling", default="controller", choices=SHARED_SAMPLING,
                   help="who picks the shared-weight archs after warm-up (ENAS: controller)")
    p.add_argument("--derive-window", type=int, default=0,
                   help="ENASConfig.derive_window: one pool scored over the last N epochs")
    p.add_argument("--val-batch-size", type=int, help="reward minibatch (default: --batch-size)")
    p.add_argument("--prior", help="a zero-cost proxy that warms the controller up (not ENAS)")
    p.add_argument("--prior-samples", type=int, default=1000)
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--json")
    p.add_argument("--save", help="folder for each seed's final ENAS checkpoint (seed<N>.pt)")
    args = p.parse_args()
    data = Path(args.data)
    truth = TabularEstimator(data / "nb201_cifar10.csv", "cifar10_test_acc_200ep").values()
    space = NB201Space()
    rng = np.random.default_rng(12345)
    probe = [space.sample(rng) for _ in range(100)]
    results = []
    for seed in args.seeds:
        start = time.perf_counter()
        estimator = SharedWeightsEstimator(
            space, data=str(data / "cifar10_sample.npz"), val_fraction=0.2, test_fraction=0.0,
            supernet={"channels": args.channels, "cells_per_stage": args.cells},
            batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, seed=seed,
            eval_batches=None, device="auto", reward=args.reward,
            val_batch_size=args.val_batch_size)
        controller = enas_controller(space, seed, aggregate=10, lr=args.controller_lr)
        enas = ENAS(estimator, controller, ENASConfig(
            epochs=args.epochs, controller_steps=args.controller_steps, warmup_epochs=args.warmup,
            derive_samples=args.derive_samples, derive_batches=args.derive_batches,
            shared_sampling=args.shared_sampling, derive_window=args.derive_window,
            prior_samples=args.prior_samples), prior=args.prior and ZeroCostEstimator(
                space, proxy=args.prior, data=str(data / "cifar10_sample.npz"), seed=seed))
        def report(record: dict, seed: int = seed) -> None:  # as each epoch ends
            print(f"  seed {seed} epoch {record['epoch']}: shared acc {record['shared_acc']:.3f} "
                  f"reward {record['reward'] or float('nan'):.3f} entropy {record['entropy']:.2f} "
                  f"derived {record['derived']} -> {truth[record['derived']]:.2f}", flush=True)

        enas.run(on_epoch=report)
        if args.save:
            Path(args.save).mkdir(parents=True, exist_ok=True)
            enas.save(Path(args.save) / f"seed{seed}.pt")
        search_seconds = time.perf_counter() - start
        derived = enas.derived
        scores = [estimator.evaluate(a).objective for a in probe]
        tau = kendalltau(scores, [truth[a.to_str()] for a in probe]).statistic
        row = {"seed": seed, "derived": derived.to_str(), "truth": truth[derived.to_str()],
               "kendall_tau_100": float(tau), "search_seconds": round(search_seconds, 1)}
        results.append(row)
        print(json.dumps(row), flush=True)
    accs = [r["truth"] for r in results]
    taus = [r["kendall_tau_100"] for r in results]
    summary = {"config": vars(args), "runs": results,
               "truth_mean": float(np.mean(accs)), "truth_std": float(np.std(accs)),
               "tau_mean": float(np.mean(taus))}
    print(f"derived cells' CIFAR-10 accuracy (NB201 ground truth): {np.mean(accs):.2f} ± "
          f"{np.std(accs):.2f} over {len(accs)} seeds; Kendall tau (100 random cells) "
          f"{np.mean(taus):.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
