#!/usr/bin/env bash
# Set up, then run the main job on the embedded default data (scikit-learn's digits).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/archsearch search "$@"
