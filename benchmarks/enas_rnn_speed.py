"""Tokens/s of ENAS's shared-weights training step on Penn Treebank (issue 4), and how it scales
with the hidden size. One random cell (12 nodes) per BPTT segment of 35 steps, batch 32.

    python benchmarks/enas_rnn_speed.py [--hidden 100 200 300 400] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from archsearch.estimators.language_model import SharedRNNEstimator
from archsearch.registry import SPACES

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ptb"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--hidden", type=int, nargs="+", default=[100, 200, 300, 400])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    space = SPACES.create("enas-rnn")
    rng = np.random.default_rng(0)
    rows = []
    for hidden in args.hidden:
        est = SharedRNNEstimator(space, args.data, hidden=hidden, batch_size=args.batch_size,
                                 device=args.device, max_steps=2)
        archs = [space.sample(rng) for _ in range(args.steps)]
        est.train_epoch(archs[:2])  # warm-up
        est.steps_per_epoch = args.steps
        start = time.perf_counter()
        est.train_epoch(archs)
        seconds = time.perf_counter() - start
        tokens = args.steps * est.config.bptt * args.batch_size
        rows.append({"hidden": hidden, "tokens_per_s": tokens / seconds,
                     "params_m": sum(p.numel() for p in est.model.parameters()) / 1e6})
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["tokens_per_s"]
    for r in rows:
        print(f"hidden {r['hidden']:4d}: {r['tokens_per_s']:8.0f} tokens/s "
              f"({r['tokens_per_s'] / base:.2f}x of hidden {rows[0]['hidden']}), "
              f"supernet {r['params_m']:.1f}M parameters")


if __name__ == "__main__":
    main()
