"""How well an NB201 supernet ranks cells when trained on uniformly sampled cells only (no
controller): Kendall tau of its validation accuracy (and of minus its validation loss) against
the NB201 ground truth over random probe cells, at chosen epochs; the ground truth of the cell
each score ranks first (random search over the probes with the supernet as the estimator); and
which ops the supernet over- or under-rates.

    python benchmarks/supernet_ranking.py --channels 16 --cells 1 --epochs 40 --lr 0.05
        --at 10 20 40 [--batch-size 64] [--sampling encodings|iso] [--probe 100] [--seed 0]
        [--json out.json]

Op bias: for each op, the Spearman correlation between how many of a probe cell's six edges
carry it and the cell's rank residual (its rank by minus the loss, minus its rank by the ground
truth, both as fractions). Positive: the supernet ranks cells with more of that op higher than
the ground truth does. Beside it, the same op count's correlation with the ground truth itself.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, rankdata, spearmanr
from torch.nn import functional as F

from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.estimators.tabular import TabularEstimator
from archsearch.spaces.nb201 import OPS, NB201Space
from archsearch.spaces.sampling import IsomorphismClassSampler

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def op_bias(probe: list, score: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, float]]:
    """Per op: Spearman of its count per cell with the rank residual and with the truth."""
    residual = rankdata(score) / len(score) - rankdata(truth) / len(truth)
    bias = {}
    for op in OPS:
        count = np.array([cell.ops.count(op) for cell in probe])
        bias[op] = {"vs_residual": round(float(spearmanr(count, residual).statistic), 3),
                    "vs_truth": round(float(spearmanr(count, truth).statistic), 3)}
    return bias


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=1)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--at", type=int, nargs="+", default=[10, 20, 40])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--sampling", default="encodings", choices=["encodings", "iso"],
                   help="training cells uniform over the 15,625 encodings or over the 6,466 "
                        "isomorphism classes (ENAS's shared_sampling uniform / uniform-iso)")
    p.add_argument("--probe", type=int, default=100, help="random cells scored (fixed sample)")
    p.add_argument("--seed", type=int, default=0, help="supernet weights and training cells")
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--json", help="write each evaluated epoch's numbers here")
    args = p.parse_args()
    data = Path(args.data)
    truth = TabularEstimator(data / "nb201_cifar10.csv", "cifar10_test_acc_200ep").values()
    space = NB201Space()
    rng = np.random.default_rng(12345)
    probe = [space.sample(rng) for _ in range(args.probe)]
    gt = np.array([truth[a.to_str()] for a in probe])
    est = SharedWeightsEstimator(
        space, data=str(data / "cifar10_sample.npz"), val_fraction=0.2, test_fraction=0.0,
        supernet={"channels": args.channels, "cells_per_stage": args.cells},
        batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, device="cpu", seed=args.seed)
    draw = IsomorphismClassSampler(space).sample if args.sampling == "iso" else space.sample
    val = est.data.val
    x = val.x.contiguous(memory_format=torch.channels_last)
    sampler = np.random.default_rng(args.seed)
    records, start = [], time.time()
    for epoch in range(1, args.epochs + 1):
        stats = est.train_epoch([draw(sampler) for _ in range(est.steps_per_epoch)])
        if epoch not in args.at:
            continue
        est.model.eval()  # BN keeps no running statistics: batch statistics of the 400 images
        with torch.no_grad():
            outs = [est.model(x, a) for a in probe]
        acc = np.array([float((o.argmax(1) == val.y).float().mean()) for o in outs])
        loss = np.array([-float(F.cross_entropy(o, val.y)) for o in outs])
        record = {
            "epoch": epoch, "train_acc": round(stats["shared_acc"], 3),
            "tau_acc": round(float(kendalltau(acc, gt).statistic), 3),
            "tau_neg_loss": round(float(kendalltau(loss, gt).statistic), 3),
            "top1_by_acc": round(float(gt[int(np.argmax(acc))]), 2),
            "top1_by_neg_loss": round(float(gt[int(np.argmax(loss))]), 2),
            "top5_mean_by_neg_loss": round(float(gt[np.argsort(-loss)[:5]].mean()), 2),
            "best_probe": round(float(gt.max()), 2),
            "op_bias": op_bias(probe, loss, gt), "seconds": round(time.time() - start),
        }
        records.append(record)
        print(f"epoch {epoch}: train acc {record['train_acc']:.3f}  tau(acc) "
              f"{record['tau_acc']:.3f}  tau(-loss) {record['tau_neg_loss']:.3f}  top-1 by acc "
              f"/ -loss: {record['top1_by_acc']:.2f} / {record['top1_by_neg_loss']:.2f} "
              f"(best of the {len(probe)}: {record['best_probe']:.2f})  "
              f"({record['seconds']} s)", flush=True)
        print("  op bias (count vs rank residual | vs truth): " + ", ".join(
            f"{op} {b['vs_residual']:+.2f} | {b['vs_truth']:+.2f}"
            for op, b in record["op_bias"].items()), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"config": vars(args), "epochs": records},
                                              indent=2) + "\n")


if __name__ == "__main__":
    main()
