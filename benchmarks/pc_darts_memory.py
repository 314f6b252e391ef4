"""Peak memory of one search step of DARTS, PC-DARTS (K=4) and GDAS at the same configuration: the
DARTS space's search network (16 channels, 5 cells), batch 32 of 32x32 images, first order,
on the CPU. A step is an architecture step on a validation batch and a weight step (GDAS: the
weights first, each through its own hard Gumbel sample: one op per edge).

Each configuration runs in a fresh subprocess, which reports

- ``saved_mib``: the bytes autograd saves for the backward pass of one training loss through
  the relaxed supernet (GDAS: through a hard sample; distinct storages; what dominates a differentiable search's memory,
  and independent of the allocator and of what else runs on the machine);
- ``peak_rss_mib`` and ``step_rss_mib``: the process's peak resident set size after the step,
  and its growth during the step over the peak before it (torch loaded, supernet built).

    python benchmarks/pc_darts_memory.py [--channels 16] [--cells 5] [--batch 32] [--size 32]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

MIB = 2 ** 20


def child(args: argparse.Namespace) -> dict[str, float]:
    import torch

    from archsearch.estimators.shared_weights import SharedWeightsEstimator
    from archsearch.oneshot.darts import DARTS, ESTIMATOR_DEFAULTS, DARTSConfig
    from archsearch.oneshot.gdas import GDAS, GDASConfig
    from archsearch.oneshot.pc_darts import PCDARTS, PCDARTSConfig
    from archsearch.registry import SPACES

    torch.set_num_threads(1)
    k = 4 if args.method == "pc-darts" else 1
    net = {"channels": args.channels, "cells": args.cells, "partial_channels": k}
    est = SharedWeightsEstimator(SPACES.create("darts"), data=args.data, supernet=net,
                                 device="cpu", test_fraction=0.0, epochs=1,
                                 **{**ESTIMATOR_DEFAULTS, "batch_size": args.batch})
    search = {"darts": lambda: DARTS(est, DARTSConfig(epochs=1)),
              "pc-darts": lambda: PCDARTS(est, PCDARTSConfig(epochs=1, arch_start_epoch=0)),
              "gdas": lambda: GDAS(est, GDASConfig(epochs=1))}[args.method]()
    assert est.steps_per_epoch == 1
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    search.train_epoch()  # one step: alpha (and beta), then the weights
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    storages: dict[int, int] = {}

    def pack(x: torch.Tensor) -> torch.Tensor:
        storages[x.untyped_storage().data_ptr()] = x.untyped_storage().nbytes()
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        path = search.sample() if args.method == "gdas" else search.path()
        est.loss(path, est.batch("val"))
    return {"saved_mib": sum(storages.values()) / MIB, "peak_rss_mib": after / MIB,
            "step_rss_mib": (after - before) / MIB}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--method", default=None, help=argparse.SUPPRESS)  # the child's
    parser.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method is not None:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        data = Path(tmp) / "images.npz"  # a training and a validation batch
        np.savez(data, x=rng.integers(0, 256, (2 * args.batch, args.size, args.size, 3),
                                      dtype=np.uint8), y=rng.integers(0, 10, 2 * args.batch))
        print(f"one search step, darts space, {args.channels} channels, {args.cells} cells, "
              f"batch {args.batch} of {args.size}x{args.size}, CPU")
        for name, method in (("DARTS", "darts"), ("PC-DARTS K=4", "pc-darts"),
                             ("GDAS", "gdas")):
            out = subprocess.run(
                [sys.executable, __file__, "--method", method, "--data", str(data),
                 *(f"--{o}={getattr(args, o)}" for o in ("channels", "cells", "batch", "size"))],
                capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{name:>13}: saved for backward {row['saved_mib']:7.1f} MiB, peak RSS "
                  f"{row['peak_rss_mib']:7.1f} MiB (+{row['step_rss_mib']:.1f} MiB in the step)")


if __name__ == "__main__":
    main()
