#!/usr/bin/env bash
# Issue "Tests that catch what matters", item 4: mutation testing of the core modules (the
# strategies and their controllers, the experiment loop and its storage, the tabular and
# shared-weights estimators, the one-shot loop and ENAS) with mutmut, configured under
# [tool.mutmut] in pyproject.toml. Not part of CI (scripts/test.sh): a full run takes hours
# on 2 cores (benchmarks/MUTATION.md has the last one's numbers and the triage of survivors).
#
# From a clean state (./mutants is deleted first), one mutant at a time (JOBS=1; more only on
# a machine with cores to spare), then a per-module table of killed / timeout / survived / no
# tests and the kill rate, also written to benchmarks/results/mutation.json.
# Needs mutmut in the virtual environment: bash scripts/setup.sh dev,mutation
# (VENV=path to use another one; MUTATION_TIME_LIMIT caps the run, in seconds).
# Arguments, if any, are mutant-name patterns (fnmatch) that restrict the run, e.g.
#   bash benchmarks/mutation.sh 'archsearch.strategies.regularized_evolution.*'
# (the other modules' mutants are then counted as "not checked").
# Afterwards: $VENV/bin/mutmut results (the survivors), $VENV/bin/mutmut show NAME (a diff).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
JOBS="${JOBS:-1}"
LIMIT="${MUTATION_TIME_LIMIT:-21600}"
if [ ! -x "$VENV/bin/mutmut" ]; then
  echo "no $VENV/bin/mutmut: bash scripts/setup.sh dev,mutation (or VENV=another venv)" >&2
  exit 2
fi
rm -rf mutants
mkdir -p mutants
# the tests must import mutmut's mutated copy (mutants/src), never src/ itself; one thread
# per process, so that a mutant's tests time the same whatever else runs
unset PYTHONPATH
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# the ENAS regression pins' portable kernels (tests/oneshot/test_enas_regression.py): with
# them set here, the pinned searches run in mutmut's process, where the mutants are
export ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE
start=$(date +%s)
status=0
echo "mutmut run (log: mutants/run.log) ..."
timeout "$LIMIT" "$VENV/bin/mutmut" run --max-children "$JOBS" "$@" > mutants/run.log 2>&1 || status=$?
seconds=$(( $(date +%s) - start ))
echo "mutmut exited with $status after ${seconds} s"
"$VENV/bin/python" benchmarks/mutation_summary.py --json benchmarks/results/mutation.json \
  --seconds "$seconds" --exit-code "$status"
exit "$status"
