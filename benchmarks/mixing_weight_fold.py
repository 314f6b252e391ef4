"""What folding each op's mixing weight into its last BatchNorm saves in a DARTS search step.

The relaxed supernets compute ``w_k * op_k(x)`` with ``w_k`` folded into op k's last BatchNorm
(``archsearch.nn.ops.scaled_batch_norm``). Here one process builds the search of
``benchmarks/darts_speed.py`` (same supernet, method and batch) and alternates steps with the
fold on and off (off: ``scaled_batch_norm`` replaced by the plain product ``w * bn(x)``), so
that both see the same machine load; each step's process CPU time and wall time are recorded.
Reported: the mean of each, and off / on.

    python benchmarks/mixing_weight_fold.py --space darts --pairs 8 [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from darts_speed import WARMUP, build_search, build_step

from archsearch.nn import ops

FOLDED = ops.scaled_batch_norm


def product(bn: torch.nn.BatchNorm2d, x: torch.Tensor, scale: torch.Tensor | None):
    """The unfolded reference: a BatchNorm, then the elementwise product."""
    return bn(x) if scale is None else scale * bn(x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", choices=("darts", "nb201"), default="darts")
    p.add_argument("--pairs", type=int, default=8, help="timed (on, off) pairs of steps")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    build = argparse.Namespace(space=args.space, method="darts", order=1, channels=args.channels,
                               cells=args.cells, batch_size=args.batch_size,
                               steps=2 * args.pairs + WARMUP, device="cpu", amp=False)
    search, _ = build_search(build)
    step = build_step(search, "darts")
    times: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    for k in range(WARMUP + args.pairs):
        for mode in ("on", "off") if k % 2 == 0 else ("off", "on"):
            ops.scaled_batch_norm = FOLDED if mode == "on" else product
            cpu, wall = time.process_time(), time.perf_counter()
            step()
            if k >= WARMUP:
                times[mode].append((time.process_time() - cpu, time.perf_counter() - wall))
    ops.scaled_batch_norm = FOLDED
    out = {"space": args.space, "channels": args.channels, "cells": args.cells,
           "batch_size": args.batch_size, "threads": args.threads, "pairs": args.pairs}
    for mode, rows in times.items():
        out[f"cpu_s_{mode}"] = statistics.mean(c for c, _ in rows)
        out[f"wall_s_{mode}"] = statistics.mean(w for _, w in rows)
    out["cpu_off_over_on"] = out["cpu_s_off"] / out["cpu_s_on"]
    out["wall_off_over_on"] = out["wall_s_off"] / out["wall_s_on"]
    print(json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
