#!/usr/bin/env bash
# The default main job (evolution over NB201 cells on digits + final retraining beside random
# cells). Target: within 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
run=$(mktemp -d)/run
/usr/bin/time -f "wall %e s, max RSS %M KB" .venv/bin/archsearch search --run "$run" --no-progress
