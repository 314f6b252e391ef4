#!/usr/bin/env bash
# The checks that need a GPU, as one script for a lent machine (a session gets minutes of it):
#
#  1. the CUDA tests: tests/test_cuda.py (every space's supernet, ENAS, stand-alone training,
#     zero-cost proxies, the main job) and tests/oneshot/test_differentiable_on_cuda.py (every
#     differentiable method end to end and resumed, no host synchronisation per search step,
#     the relaxed supernets' function and gradients against the CPU);
#  2. seconds per search step (benchmarks/darts_speed.py, CUDA synchronised around each step)
#     of first-order DARTS on the darts space's search network (16 channels, 8 cells) at batch
#     64, the issue's GPU target, with the estimator's bf16 autocast and without; then DARTS
#     and GDAS on the NB201 supernet; and what each implies for a 50-epoch search over
#     CIFAR-10's 25,000 weight images (391 steps an epoch at batch 64; target <= 30 minutes).
#
# The machine has PyTorch with CUDA, pytest and numpy but not tomli-w, and reaches no package
# index: first, here, `bash benchmarks/gpu_checks.sh --wheels` saves tomli-w's wheel into .whl/
# (ignored by git). Then, on the device: the tool's run with command
# `bash benchmarks/gpu_checks.sh`, carry [".whl"], timeout_s 540. Results go to $OUT (the
# device's folder that comes back) or else benchmarks/results/gpu/: tests.txt, speed.jsonl and
# summary.txt. A dry run of the script itself on a machine without a GPU: DEVICE=cpu STEPS=1
# (the GPU tests then run on the CPU, see tests/oneshot/test_differentiable_on_cuda.py).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--wheels" ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  exec python3 -m pip download --no-deps --only-binary=:all: -d .whl "tomli-w==1.2.0"
fi
PY="${PYTHON:-python3}"
out="${OUT:-benchmarks/results/gpu}"
mkdir -p "$out"
if ls .whl/*.whl > /dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
DEVICE="${DEVICE:-cuda}" STEPS="${STEPS:-30}"
if [ "$DEVICE" = cuda ]; then
  "$PY" -c "import sys, torch; torch.cuda.is_available() or sys.exit('gpu_checks: no CUDA GPU \
here: run it on the lent machine (or DEVICE=cpu STEPS=1 for a dry run)'); \
print(torch.__version__, torch.cuda.get_device_name())" | tee "$out/summary.txt" || exit 2
else
  export ARCHSEARCH_GPU_TESTS_ON_CPU=1
  echo "dry run on $DEVICE" | tee "$out/summary.txt"
fi

"$PY" -m pytest -q -p no:cacheprovider --timeout=300 -rs tests/test_cuda.py \
  tests/oneshot/test_differentiable_on_cuda.py 2>&1 | tee "$out/tests.txt"
tests_rc=${PIPESTATUS[0]}

: > "$out/speed.jsonl"
speed() {  # darts_speed.py's arguments
  timeout 120 "$PY" benchmarks/darts_speed.py --device "$DEVICE" "$@" >> "$out/speed.jsonl" \
    || echo "{\"failed\": \"$*\"}" >> "$out/speed.jsonl"
}
speed --space darts --channels 16 --cells 8 --batch-size 64 --steps "$STEPS"
speed --space darts --channels 16 --cells 8 --batch-size 64 --steps "$STEPS" --no-amp
speed --space darts --channels 16 --cells 8 --batch-size 64 --steps "$(( (STEPS + 2) / 3 ))" --order 2
speed --space nb201 --cells 5 --batch-size 64 --steps "$STEPS"
speed --space nb201 --cells 5 --batch-size 64 --steps "$STEPS" --method gdas

"$PY" - "$out/speed.jsonl" <<'EOF' | tee -a "$out/summary.txt"
import json, math, sys
steps = 50 * math.ceil(25_000 / 64)  # a 50-epoch search at batch 64
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "failed" in r:
        print("failed:", r["failed"])
        continue
    minutes = steps * r["s_per_step"] / 60
    print(f"{r['space']:6} {r['method']:5} order {r['order']} cells {r['cells']} batch "
          f"{r['batch_size']} amp {r['amp']!s:5}: {r['s_per_step']:.4f} s/step (fastest "
          f"{r['s_per_step_min']:.4f}); 50 epochs: {minutes:.1f} min")
EOF
echo "tests exit status: $tests_rc" | tee -a "$out/summary.txt"
exit "$tests_rc"
