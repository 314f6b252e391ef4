#!/usr/bin/env bash
# Set up with the test tools, then run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,ray  # Ray: the executor tests start a real local cluster
exec .venv/bin/python -m pytest -q --timeout=900 "$@"
