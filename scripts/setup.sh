#!/usr/bin/env bash
# Create .venv (if missing) and install archsearch into it: the CPU build of torch 2.13.0 first,
# so that nothing pulls a multi-GB CUDA build, then the package (with test tools when asked).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
