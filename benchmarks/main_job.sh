#!/usr/bin/env bash
# The default main job, timed: `archsearch search` with no arguments (now ENAS over the micro
# space on digits, then the derived cell retrained beside random cells; it was regularized
# evolution over NB201 cells in the first wave). Target: within 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
run=$(mktemp -d)/run
/usr/bin/time -f "wall %e s, max RSS %M KB" .venv/bin/archsearch search --run "$run" --no-progress
