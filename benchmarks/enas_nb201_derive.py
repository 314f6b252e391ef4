"""Other ways to derive the final cell from finished ENAS searches on NB201 (offline ablation).

Loads the checkpoints written by ``benchmarks/enas_nb201.py --save DIR`` and, for each seed,
reports the NB201 ground truth of the cell picked by: the search's own derive step (``run``);
the best of the first K of 512 fresh policy samples, each scored on all 400 validation images
(``best32``/``best128``/``best512``); the policy's most frequent sample (``mode``); the best of
200 uniformly random cells scored the same way (random search with the supernet as estimator);
and the mean ground truth of the policy's samples.

    python benchmarks/enas_nb201_derive.py --save DIR --seeds 0 1 2 [--channels 16 --cells 1]
        [--reward neg_loss]

The supernet's structure and reward must match the search's (defaults: the best command in
enas_nb201.py).
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.estimators.tabular import TabularEstimator
from archsearch.oneshot.enas import ENAS, ENASConfig, enas_controller
from archsearch.spaces.nb201 import NB201Space

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--save", required=True, help="the folder given to enas_nb201.py --save")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=1)
    p.add_argument("--reward", default="neg_loss", choices=["accuracy", "neg_loss"])
    p.add_argument("--data", default=str(DATA))
    args = p.parse_args()
    data = Path(args.data)
    truth = TabularEstimator(data / "nb201_cifar10.csv", "cifar10_test_acc_200ep").values()
    space = NB201Space()
    rows = []
    for seed in args.seeds:
        estimator = SharedWeightsEstimator(
            space, data=str(data / "cifar10_sample.npz"), val_fraction=0.2, test_fraction=0.0,
            supernet={"channels": args.channels, "cells_per_stage": args.cells}, seed=seed,
            eval_batches=None, device="cpu", reward=args.reward)
        controller = enas_controller(space, seed, aggregate=10)
        enas = ENAS(estimator, controller, ENASConfig())
        enas.load(Path(args.save) / f"seed{seed}.pt")  # supernet, policy and history
        scores: dict[str, float] = {}

        def score(arch, scores=scores, estimator=estimator) -> float:  # all 400 val images
            key = arch.to_str()
            if key not in scores:
                scores[key] = estimator.evaluate(arch).objective
            return scores[key]

        samples = controller.sample_architectures(512)
        row = {"seed": seed, "run": truth[enas.history[-1]["derived"]]}
        for k in (32, 128, 512):
            row[f"best{k}"] = truth[max(samples[:k], key=score).to_str()]
        row["mode"] = truth[collections.Counter(a.to_str() for a in samples).most_common(1)[0][0]]
        rng = np.random.default_rng(seed)
        row["uniform_best200"] = truth[max((space.sample(rng) for _ in range(200)),
                                           key=score).to_str()]
        row["policy_mean"] = float(np.mean([truth[a.to_str()] for a in samples]))
        rows.append(row)
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}),
              flush=True)
    print("mean over seeds:", {k: round(float(np.mean([r[k] for r in rows])), 2)
                               for k in rows[0] if k != "seed"})


if __name__ == "__main__":
    main()
