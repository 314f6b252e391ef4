"""How well an NB201 supernet ranks cells when trained on uniformly sampled cells only (no
controller): Kendall tau of its validation accuracy (and of minus its validation loss) against
the NB201 ground truth over 100 random cells, at chosen epochs, and the ground truth of the cell
each score ranks first (random search over those 100 cells with the supernet as the estimator).

    python benchmarks/supernet_ranking.py --channels 16 --cells 1 --epochs 40 --lr 0.05
        --at 10 20 40 [--batch-size 64]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau
from torch.nn import functional as F

from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.estimators.tabular import TabularEstimator
from archsearch.spaces.nb201 import NB201Space

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=1)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--at", type=int, nargs="+", default=[10, 20, 40])
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    truth = TabularEstimator(DATA / "nb201_cifar10.csv", "cifar10_test_acc_200ep").table
    space = NB201Space()
    rng = np.random.default_rng(12345)
    probe = [space.sample(rng) for _ in range(100)]
    gt = [truth[a.to_str()] for a in probe]
    est = SharedWeightsEstimator(
        space, data=str(DATA / "cifar10_sample.npz"), val_fraction=0.2, test_fraction=0.0,
        supernet={"channels": args.channels, "cells_per_stage": args.cells},
        batch_size=args.batch_size,
        lr=args.lr, epochs=args.epochs, device="cpu")
    val = est.data.val
    x = val.x.contiguous(memory_format=torch.channels_last)
    sampler = np.random.default_rng(0)
    start = time.time()
    for epoch in range(1, args.epochs + 1):
        stats = est.train_epoch([space.sample(sampler) for _ in range(est.steps_per_epoch)])
        if epoch in args.at:
            est.model.eval()
            with torch.no_grad():
                outs = [est.model(x, a) for a in probe]
            acc = [float((o.argmax(1) == val.y).float().mean()) for o in outs]
            loss = [-float(F.cross_entropy(o, val.y)) for o in outs]
            print(f"epoch {epoch}: train acc {stats['shared_acc']:.3f}  tau(acc) "
                  f"{kendalltau(acc, gt).statistic:.3f}  tau(-loss) "
                  f"{kendalltau(loss, gt).statistic:.3f}  top-1 by acc / -loss: "
                  f"{gt[int(np.argmax(acc))]:.2f} / {gt[int(np.argmax(loss))]:.2f} "
                  f"(best of the 100: {max(gt):.2f})  ({time.time() - start:.0f} s)",
                  flush=True)


if __name__ == "__main__":
    main()
