#!/usr/bin/env bash
# Our DARTS search step at an earlier commit (A) against the working tree (B), side by side:
# ROUNDS rounds, each running benchmarks/darts_speed.py (THREADS threads, default one; first
# order, batch 32, 16 channels, 5 cells) on nb201 and the darts space with A's src, then with B's, so that both
# see the same load. Each line: round, a|b, space, darts_speed.py's JSON (its cpu_s_per_step,
# the process's CPU time, is what a loaded machine inflates least).
#
#   OLD=0cdc7b8 ROUNDS=3 bash benchmarks/darts_speed_ab.sh > ab.log
#   OLD=0cdc7b8 ROUNDS=3 THREADS=2 NB201_STEPS=10 DARTS_STEPS=6 bash benchmarks/darts_speed_ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OLD="${OLD:?set OLD to the commit to compare with}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-1}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
git archive "$OLD" src | tar -x -C "$tmp"
for r in $(seq "$ROUNDS"); do
  for side in a b; do
    src="$tmp/src"
    [ "$side" = b ] && src="$PWD/src"
    for space in nb201 darts; do
      steps="${NB201_STEPS:-6}"
      [ "$space" = darts ] && steps="${DARTS_STEPS:-4}"
      out="$(PYTHONPATH="$src" OMP_NUM_THREADS="$THREADS" .venv/bin/python \
        benchmarks/darts_speed.py --space "$space" --steps "$steps" --threads "$THREADS")"
      echo "$r $side $space $out"
    done
  done
done
