"""Time archsearch's ENAS on the micro space at NNI's ENAS configuration: width 16, cells
N R N R N (one per stage), 5 nodes, batch 32, CIFAR-shaped input. Seconds per shared-weights
training batch (the controller samples the architectures in one pass; augmentation, forward,
backward, SGD step) and per reward batch (as in the ENAS loop: the controller proposes a group
of 10 architectures, each runs forward on its own validation batch, the rewards are copied to
the host once and the controller is told, taking one Adam step per 10). ``--channels 20 --cells 2
--batch-size 160 --device cuda``: the paper's search-time supernet on a GPU.

``--output loose`` (the default) is ENAS's cell: its output concatenates the loose ends.
``--output all`` concatenates every intermediate node, as NNI 3.0's one-shot supernet cells do
(NNI's ``PathSamplingCell`` treats ``merge_op='loose_end'`` as ``'all'``): the configuration to
compare with ``benchmarks/nni_enas_speed.py``. One difference remains even then: NNI's cell hands
the 5C-channel concatenation to the next cells' 1x1 preprocessing, ours maps it back to C channels
with one 1x1 conv first (see ``archsearch.spaces.enas_micro``)."""

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

AGGREGATE = 10  # rewards per controller step (the CLI's ENAS default)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--channels", type=int, default=16, help="supernet width")
    p.add_argument("--cells", type=int, default=1, help="supernet cells per stage")
    p.add_argument("--output", choices=("loose", "all"), default="loose",
                   help="what a cell's output concatenates: its loose ends (ENAS) or every "
                        "intermediate node (NNI 3.0's one-shot cells)")
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
            supernet={"channels": args.channels, "cells_per_stage": args.cells,
                      "output": args.output},
            batch_size=args.batch_size, val_fraction=0.5, test_fraction=0.0, device=args.device)
    controller = enas_controller(space, seed=0, aggregate=AGGREGATE)

    def reward_steps(n: int) -> None:
        """n reward batches as the ENAS loop runs them: the controller proposes a group of
        ``AGGREGATE`` (one Adam step's worth), each is scored on its own validation batch on
        the device, the rewards come to the host once per group and the controller is told."""
        done = 0
        while done < n:
            group = [controller.ask() for _ in range(min(AGGREGATE, n - done))]
            for arch, reward in zip(group, estimator.score(group, 1, shared=False).tolist()):
                controller.tell(arch, Result(reward))
            done += len(group)

    estimator.train_epoch(controller.sample_architectures(2))  # warm-up
    start = time.perf_counter()
    estimator.train_epoch(controller.sample_architectures(args.batches))
    train = (time.perf_counter() - start) / args.batches
    reward_steps(2)  # warm-up
    start = time.perf_counter()
    reward_steps(args.batches)
    reward = (time.perf_counter() - start) / args.batches
    print(json.dumps({
        "framework": "archsearch", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "batch_size": args.batch_size, "device": args.device, "channels": args.channels,
        "cells_per_stage": args.cells, "output": args.output, "train_s_per_batch": train, "reward_s_per_batch": reward,
        "train_images_per_s": args.batch_size / train,
        "reward_images_per_s": args.batch_size / reward,
    }))


if __name__ == "__main__":
    main()
