"""How well training each NB201 cell alone on the CIFAR-10 sample ranks good cells: the ceiling
that any estimator trained on these 1,600 images (a supernet included) works under.

Draws ``--count`` cells whose NB201 ground truth is at least ``--min-truth`` (the region a
search's final pick is made in; 91.0 keeps the top ~40% of the space), trains each from scratch
on the sample's 1,600 training images and measures it on the other 400 (the split ENAS uses),
then reports the Kendall tau of the validation accuracy and of minus the validation loss against
the ground truth (200 epochs on all 50,000 CIFAR-10 images), and the truth of the cell each ranks
first.

    python benchmarks/standalone_ranking.py --count 12 --min-truth 91.0 --epochs 20
        [--cells 1] [--channels 16] [--batch-size 32] [--lr 0.05] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from archsearch.data import load_image_data
from archsearch.estimators.full_training import arch_seed, build_seeded
from archsearch.estimators.tabular import TabularEstimator
from archsearch.spaces.nb201 import NB201Space
from archsearch.train.loop import TrainConfig, evaluate, fit

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=12, help="cells trained")
    p.add_argument("--min-truth", type=float, default=91.0, help="lowest ground truth drawn")
    p.add_argument("--epochs", type=float, default=20)
    p.add_argument("--cells", type=int, default=1, help="cells per stage of each network")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0, help="which cells are drawn, and their init")
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--json")
    args = p.parse_args()
    data_dir = Path(args.data)
    truth = TabularEstimator(data_dir / "nb201_cifar10.csv", "cifar10_test_acc_200ep").values()
    data = load_image_data(str(data_dir / "cifar10_sample.npz"), seed=0, val_fraction=0.2,
                           test_fraction=0.0)
    space, rng = NB201Space(), np.random.default_rng(args.seed)
    cells: list = []
    while len(cells) < args.count:
        cell = space.sample(rng)
        if truth[cell.to_str()] >= args.min_truth and cell not in cells:
            cells.append(cell)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    rows = []
    for cell in cells:
        start = time.perf_counter()
        seed = arch_seed(args.seed, cell)
        model = build_seeded(lambda cell=cell: space.build(
            cell, channels=args.channels, cells_per_stage=args.cells,
            num_classes=data.num_classes), seed)
        stats = fit(model, data, config, torch.Generator().manual_seed(seed))
        loss, acc = evaluate(model, data.val)
        rows.append({"cell": cell.to_str(), "truth": truth[cell.to_str()], "val_acc": acc,
                     "val_loss": loss, "train_acc": stats["train_acc"],
                     "seconds": round(time.perf_counter() - start, 1)})
        print(f"{rows[-1]['truth']:.2f}  val acc {acc:.4f}  val loss {loss:.4f}  train acc "
              f"{stats['train_acc']:.3f}  ({rows[-1]['seconds']} s)  {cell.to_str()}",
              flush=True)
    gt = np.array([r["truth"] for r in rows])
    acc = np.array([r["val_acc"] for r in rows])
    neg_loss = -np.array([r["val_loss"] for r in rows])
    summary = {
        "config": vars(args), "cells": rows,
        "tau_acc": float(kendalltau(acc, gt).statistic),
        "tau_neg_loss": float(kendalltau(neg_loss, gt).statistic),
        "top1_by_acc": float(gt[int(np.argmax(acc))]),
        "top1_by_neg_loss": float(gt[int(np.argmax(neg_loss))]),
        "best": float(gt.max()), "mean": float(gt.mean()),
    }
    print(f"Kendall tau vs ground truth over {len(rows)} cells: accuracy "
          f"{summary['tau_acc']:.3f}, minus loss {summary['tau_neg_loss']:.3f}; top-1 by "
          f"accuracy / minus loss {summary['top1_by_acc']:.2f} / "
          f"{summary['top1_by_neg_loss']:.2f} (best {summary['best']:.2f}, "
          f"mean {summary['mean']:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
