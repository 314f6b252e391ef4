"""Random search with an NB201 supernet as the estimator, no controller: the baseline beside
ENAS recipe (D) on NAS-Bench-201.

Recipe (D) of BENCHMARKS.md ("ENAS on NAS-Bench-201") trains its shared weights on cells drawn
uniformly over NB201's isomorphism classes (``shared_sampling="uniform-iso"``), never on the
controller's samples; the controller only learns from the rewards. So its supernet can be
trained without any controller, and the question is what the controller adds over ranking
random cells with that supernet. For each seed this script trains the supernet as (D) does
(16 channels, 1 cell per stage, batch 16, lr 0.025 cosine over ``--epochs`` epochs, cells
uniform over isomorphism classes, 1,600 training images of ../shared/data/cifar10_sample.npz),
then scores K uniformly random cells on all 400 validation images (minus the cross-entropy,
(D)'s reward; accuracy beside it) and looks up the NB201 ground truth (200-epoch CIFAR-10 test
accuracy) of the cell ranked first. The candidates for K are the first K of one draw, so the
sets are nested.

    python benchmarks/supernet_random_search.py --seeds 0 1 2 3 4 5 --epochs 50 --k 10 100 200 \\
        --json benchmarks/results/supernet_random_search.json

is the full size. On one thread of the 2-core machine, with other jobs running, one epoch took
9.4 s and scoring 0.56 s per cell, so a seed takes about 8 minutes of training and 2 of scoring
(recipe (D) trains the same supernet and adds 10 controller steps per epoch). A quick check:
``--seeds 0 --epochs 1 --k 5``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.estimators.tabular import TabularEstimator
from archsearch.spaces.nb201 import NB201Space
from archsearch.spaces.sampling import IsomorphismClassSampler

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1))
            if len(values) > 1 else 0.0, "min": float(min(values)), "max": float(max(values))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=50, help="supernet training epochs ((D): 50)")
    p.add_argument("--k", type=int, nargs="+", default=[10, 100, 200],
                   help="how many uniformly random cells the supernet ranks")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=1, help="cells per stage of the supernet")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.025)
    p.add_argument("--sampling", default="iso", choices=["iso", "encodings"],
                   help="training cells uniform over isomorphism classes ((D)) or encodings ((C))")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--json", help="write the per-seed picks and the summary here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = Path(args.data)
    truth = TabularEstimator(data / "nb201_cifar10.csv", "cifar10_test_acc_200ep").values()
    space = NB201Space()
    draw = IsomorphismClassSampler(space).sample if args.sampling == "iso" else space.sample
    runs = []
    for seed in args.seeds:
        start = time.perf_counter()
        est = SharedWeightsEstimator(
            space, data=str(data / "cifar10_sample.npz"), val_fraction=0.2, test_fraction=0.0,
            supernet={"channels": args.channels, "cells_per_stage": args.cells},
            batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, seed=seed,
            device=args.device)
        sampler = np.random.default_rng(seed)
        for _ in range(args.epochs):
            stats = est.train_epoch([draw(sampler) for _ in range(est.steps_per_epoch)])
        train_seconds = time.perf_counter() - start
        rng = np.random.default_rng([seed, 1])
        candidates = [space.sample(rng) for _ in range(max(args.k))]
        val = est.data.val
        x = val.x.contiguous(memory_format=torch.channels_last)
        est.model.eval()  # BN keeps no running statistics: batch statistics of the 400 images
        start = time.perf_counter()
        with torch.no_grad():
            outs = [est.model(x, a) for a in candidates]
        score_seconds = time.perf_counter() - start
        neg_loss = np.array([-float(F.cross_entropy(o.float(), val.y)) for o in outs])
        acc = np.array([float((o.argmax(1) == val.y).float().mean()) for o in outs])
        gt = np.array([truth[a.to_str()] for a in candidates])
        row: dict = {"seed": seed, "train_acc": round(stats["shared_acc"], 3),
                     "train_seconds": round(train_seconds, 1),
                     "score_seconds_per_cell": round(score_seconds / len(candidates), 4)}
        for k in args.k:
            by_loss, by_acc = int(np.argmax(neg_loss[:k])), int(np.argmax(acc[:k]))
            row[f"k{k}"] = {"pick": candidates[by_loss].to_str(),
                            "truth_by_neg_loss": float(gt[by_loss]),
                            "truth_by_acc": float(gt[by_acc]),
                            "best_of_k": float(gt[:k].max()), "mean_of_k": float(gt[:k].mean())}
        runs.append(row)
        print(json.dumps(row), flush=True)
    summary = {k: {what: mean_std([r[f"k{k}"][what] for r in runs])
                   for what in ("truth_by_neg_loss", "truth_by_acc", "best_of_k", "mean_of_k")}
               for k in args.k}
    for k in args.k:
        s = summary[k]
        print(f"K={k}: ground truth of the supernet's pick (minus loss) "
              f"{s['truth_by_neg_loss']['mean']:.2f} +- {s['truth_by_neg_loss']['std']:.2f}, "
              f"by accuracy {s['truth_by_acc']['mean']:.2f} +- {s['truth_by_acc']['std']:.2f}; "
              f"best of the K {s['best_of_k']['mean']:.2f}, their mean "
              f"{s['mean_of_k']['mean']:.2f} (over {len(runs)} seeds, std with ddof=1)")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": vars(args), "runs": runs,
                                               "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
