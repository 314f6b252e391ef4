#!/usr/bin/env bash
# Issue 3: images/s of ENAS's shared-weights training step and reward step on the micro space,
# archsearch against NNI 3.0's ENAS (nni.nas.hub.pytorch.ENAS(width=16, num_cells=5,
# dataset='cifar') with nni.nas.strategy.ENAS), batch 32, CIFAR-shaped input, side by side.
# Target: archsearch >= 3x NNI's images/s on both steps.
# NNI goes into its own virtual environment (.venv-nni), never into the project's.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-nni/bin/python ]; then
  python3 -m venv .venv-nni
  .venv-nni/bin/pip install --quiet --upgrade pip
  .venv-nni/bin/pip install --quiet "torch==2.13.0"
  # NNI's NAS needs pytorch-lightning without declaring it; newer versions break its ENAS
  .venv-nni/bin/pip install --quiet "nni==3.0" "pytorch-lightning==2.0.9" "setuptools<80" gym \
    "tianshou<0.5"
fi
rounds="${ROUNDS:-2}"
out=$(mktemp)
for r in $(seq "$rounds"); do   # alternate the two, so that load on the machine hits both
  .venv/bin/python benchmarks/enas_speed.py --batches 20 >> "$out"
  .venv-nni/bin/python benchmarks/nni_enas_speed.py --batches 12 2>/dev/null | grep '^{' >> "$out"
done
.venv/bin/python - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def mean(fw, key):
    v = [r[key] for r in rows if r["framework"].startswith(fw)]
    return sum(v) / len(v)
bs = rows[0]["batch_size"]
print(f"{'':12} {'train s/batch':>14} {'train img/s':>12} {'reward s/batch':>15} {'reward img/s':>13}")
for fw in ("archsearch", "nni"):
    t, r = mean(fw, "train_s_per_batch"), mean(fw, "reward_s_per_batch")
    print(f"{fw:12} {t:14.3f} {bs / t:12.1f} {r:15.3f} {bs / r:13.1f}")
for key, name in (("train_s_per_batch", "training step"), ("reward_s_per_batch", "reward step")):
    print(f"{name}: archsearch is {mean('nni', key) / mean('archsearch', key):.1f}x NNI's images/s")
PY
