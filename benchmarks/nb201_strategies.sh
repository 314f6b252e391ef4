#!/usr/bin/env bash
# Issue 2: random / regularized evolution / REINFORCE on NAS-Bench-201 CIFAR-10 (oracle reward),
# 100 seeds x 300 queries. Target: within 60 s on 2 cores; at 150 queries random ~93.92,
# evolution >= 94.25, reinforce >= 94.0.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${SHARED_DATA:-../shared/data}"
/usr/bin/time -f "wall %e s" .venv/bin/archsearch bench \
  --benchmark "$DATA/nb201_cifar10.csv" --metric cifar10_test_acc_200ep \
  --strategies random,evolution,reinforce --seeds 100 --queries 300 \
  --json benchmarks/results/nb201_oracle_bench.json --plot benchmarks/results/nb201_oracle_bench.png \
  --no-progress
