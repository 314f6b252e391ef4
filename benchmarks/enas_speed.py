"""Time archsearch's ENAS on the micro space at NNI's ENAS configuration: width 16, cells
N R N R N (one per stage), 5 nodes, batch 32, CIFAR-shaped input. Seconds per shared-weights
training batch (the controller samples the architectures in one pass; augmentation, forward,
backward, SGD step) and per reward batch (the controller proposes an architecture, a
validation batch goes forward, the controller is told the reward). ``--channels 20 --cells 2
--batch-size 160 --device cuda``: the paper's search-time supernet on a GPU."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from archsearch.estimators.shared_weights import SharedWeightsEstimator
from archsearch.oneshot.enas import enas_controller
from archsearch.registry import SPACES
from archsearch.types import Result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--channels", type=int, default=16, help="supernet width")
    p.add_argument("--cells", type=int, default=1, help="supernet cells per stage")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n = (args.batches + 2) * args.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cifar_shaped.npz"
        np.savez(path, x=rng.integers(0, 256, (2 * n, 32, 32, 3), dtype=np.uint8),
                 y=rng.integers(0, 10, 2 * n))
        space = SPACES.create("enas-micro", n_nodes=5)
        estimator = SharedWeightsEstimator(
            space, data=str(path),
            supernet={"channels": args.channels, "cells_per_stage": args.cells},
            batch_size=args.batch_size, val_fraction=0.5, test_fraction=0.0, device=args.device)
    controller = enas_controller(space, seed=0, aggregate=10)
    estimator.train_epoch(controller.sample_architectures(2))  # warm-up
    start = time.perf_counter()
    estimator.train_epoch(controller.sample_architectures(args.batches))
    train = (time.perf_counter() - start) / args.batches
    for _ in range(2):  # warm-up
        arch = controller.ask()
        controller.tell(arch, Result(estimator.score(arch)))
    start = time.perf_counter()
    for _ in range(args.batches):
        arch = controller.ask()
        controller.tell(arch, Result(estimator.score(arch)))
    reward = (time.perf_counter() - start) / args.batches
    print(json.dumps({
        "framework": "archsearch", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "batch_size": args.batch_size, "device": args.device, "channels": args.channels,
        "cells_per_stage": args.cells, "train_s_per_batch": train, "reward_s_per_batch": reward,
        "train_images_per_s": args.batch_size / train,
        "reward_images_per_s": args.batch_size / reward,
    }))


if __name__ == "__main__":
    main()
