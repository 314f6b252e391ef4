#!/usr/bin/env bash
# Set up with the test tools, then lint and run the whole test suite (what CI runs).
# Reference data (../shared/data) is required: a missing file fails the run instead of skipping
# the tests that read it (ARCHSEARCH_REQUIRE_DATA=0 to skip them, e.g. on a machine without it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,ray,bo  # Ray: the executor tests start a real local cluster; bo: BoTorch
.venv/bin/ruff check .
export ARCHSEARCH_REQUIRE_DATA="${ARCHSEARCH_REQUIRE_DATA:-1}"
exec .venv/bin/python -m pytest -q --timeout=900 "$@"
