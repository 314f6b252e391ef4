#!/usr/bin/env bash
# Issue 18 ("Speed"): seconds per DARTS search step, archsearch against NNI 3.0, side by side,
# batch 32, CIFAR-shaped input, on the CPU (benchmarks/darts_speed.py, benchmarks/nni_darts_speed.py).
# One step: one architecture step on a validation batch and one weight step on a training batch.
#
# Each round runs, one after the other so that load on the machine hits them all:
#   ours  darts space, DARTS order 1      (16 channels, 5 cells in all)
#   ours  darts space, DARTS order 2      (the unrolled step; NNI has no second order)
#   nni   darts space, strategy.DARTS     (hub DARTS(width=16, num_cells=5, dataset='cifar'))
#   ours  nb201, DARTS order 1            (16 channels, 5 cells per stage)
#   ours  nb201, GDAS                     (one op per edge, weights first)
#   nni   nb201, strategy.DARTS           (hub NasBench201(16, 5))
#   nni   nb201, strategy.GumbelDARTS     (soft Gumbel-softmax over every op: NNI's nearest to
#                                          GDAS, not GDAS)
# The ratios are taken per round (NNI's s/step over ours in the same round, and our order 2 over
# our order 1) and reported with their mean, std, min and max over the rounds.
#
# Comparability. darts space: the same supernet layout (a 3C stem, cells at C, 2C, 4C with the
# reductions at cells 1 and 3, 14 edges x the 7 DARTS ops, none as an 8th alpha entry, a cell's
# output the concatenation of its 4 nodes) and the same 224 alpha entries (ours: 2 matrices
# 14 x 8; NNI: 28 vectors of 8); ours follows DARTS' code where NNI does not: BatchNorm after
# the pooling ops of a mixed edge (NNI: none), BatchNorm without affine parameters or running
# statistics (NNI's are affine and track them). nb201: the same network (NNI's parameter count
# is ours with bn_affine), the 5 ops on 6 edges shared by all cells (30 alpha entries both),
# BatchNorm as above. The weights' optimizer is DARTS' (SGD momentum 0.9, lr 0.025, weight
# decay 3e-4, clip 5) on both sides but for our GDAS (its AutoDL preset: Nesterov, 5e-4).
# Our timed step includes taking its two minibatches (the training one augmented); NNI's
# training_step gets them from its DataLoader outside the timing, and logs loss and accuracy.
#
# Environment: ROUNDS (default 2), STEPS (archsearch's timed steps, default 10; 2 untimed
# first), NNI_STEPS (NNI's timed training_step calls, default 10; 2 untimed first), THREADS
# (torch threads for every run; default 0: torch's own), CHANNELS (16), DARTS_CELLS (darts
# space: cells in all, 5), NB201_CELLS (nb201: cells per stage, 5), PYTHON (the project's
# interpreter, default .venv/bin/python), NNI_PYTHON (default .venv-nni/bin/python, made below
# when missing), JSON (a file for every per-run row and the summary; optional), NNI_MALLOC=1
# (each round also runs NNI's two DARTS steps with glibc's malloc set as archsearch sets its own,
# archsearch.allocator: mmap threshold 32 MiB, trim threshold 1 GiB, through GLIBC_TUNABLES;
# rows "nni+malloc ...": how much of the ratio that setting is).
# NNI goes into its own virtual environment (.venv-nni), never into the project's.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
nni_py="${NNI_PYTHON:-.venv-nni/bin/python}"
if [ -z "${NNI_PYTHON:-}" ] && [ ! -x .venv-nni/bin/python ]; then
  python3 -m venv .venv-nni
  .venv-nni/bin/pip install --quiet --upgrade pip
  .venv-nni/bin/pip install --quiet "torch==2.13.0"
  # NNI's NAS needs pytorch-lightning without declaring it; newer versions break its one-shot
  .venv-nni/bin/pip install --quiet "nni==3.0" "pytorch-lightning==2.0.9" "setuptools<80" gym \
    "tianshou<0.5"
fi
rounds="${ROUNDS:-2}"
steps="${STEPS:-10}"
nni_steps="${NNI_STEPS:-10}"
common=(--threads "${THREADS:-0}" --channels "${CHANNELS:-16}")
darts=(--space darts --cells "${DARTS_CELLS:-5}")
nb201=(--space nb201 --cells "${NB201_CELLS:-5}")
out=$(mktemp)
nni_log="$out.nni.log"
tag() { sed "s/^{/{\"round\": $1, /"; }
ours() { PYTHONPATH=src "$py" benchmarks/darts_speed.py --steps "$steps" "${common[@]}" "$@" \
  | grep '^{' | tag "$r" >> "$out"; }
nni_run() {
  if ! $nni_env "$nni_py" benchmarks/nni_darts_speed.py --steps "$nni_steps" "${common[@]}" "$@" \
      2>>"$nni_log" | grep '^{' | tag "$r" >> "$out"; then
    echo "NNI run failed; the end of its log ($nni_log):" >&2
    tail -20 "$nni_log" >&2
    exit 1
  fi
}
nni_env=""
tuned=(env GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824)
nni_tuned() {  # NNI with archsearch's malloc setting; its rows' framework gets "+malloc"
  local before
  before=$(wc -l < "$out")
  nni_env="${tuned[*]}" nni_run "$@"
  sed -i "$((before + 1)),\$ s/\"framework\": \"nni 3.0\"/\"framework\": \"nni 3.0+malloc\"/" "$out"
}
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq "$rounds"); do
  ours "${darts[@]}" --method darts --order 1
  ours "${darts[@]}" --method darts --order 2
  nni_run "${darts[@]}" --method darts
  ours "${nb201[@]}" --method darts --order 1
  ours "${nb201[@]}" --method gdas
  nni_run "${nb201[@]}" --method darts
  nni_run "${nb201[@]}" --method gdas
  if [ "${NNI_MALLOC:-0}" = 1 ]; then
    nni_tuned "${darts[@]}" --method darts
    nni_tuned "${nb201[@]}" --method darts
  fi
  echo "round $r of $rounds done" >&2
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$py" - "$out" "${JSON:-}" <<'PY'
import json
import statistics as st
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
rounds = sorted({r["round"] for r in rows})
# run name -> (framework, space, method, order)
RUNS = {"ours darts DARTS-1": ("archsearch", "darts", "darts", 1),
        "ours darts DARTS-2": ("archsearch", "darts", "darts", 2),
        "nni darts DARTS": ("nni 3.0", "darts", "darts", 1),
        "ours nb201 DARTS-1": ("archsearch", "nb201", "darts", 1),
        "ours nb201 GDAS": ("archsearch", "nb201", "gdas", 1),
        "nni nb201 DARTS": ("nni 3.0", "nb201", "darts", 1),
        "nni nb201 GumbelDARTS": ("nni 3.0", "nb201", "gdas", 1)}
RATIOS = (("nni darts DARTS", "ours darts DARTS-1", "darts space, DARTS 1st order: NNI / ours"),
          ("nni nb201 DARTS", "ours nb201 DARTS-1", "nb201, DARTS 1st order: NNI / ours"),
          ("nni nb201 GumbelDARTS", "ours nb201 GDAS",
           "nb201, NNI's GumbelDARTS / our GDAS (not the same algorithm)"),
          ("ours darts DARTS-2", "ours darts DARTS-1", "ours, darts space: order 2 / order 1"))
if any(r["framework"] == "nni 3.0+malloc" for r in rows):
    RUNS |= {"nni+malloc darts DARTS": ("nni 3.0+malloc", "darts", "darts", 1),
             "nni+malloc nb201 DARTS": ("nni 3.0+malloc", "nb201", "darts", 1)}
    RATIOS += (("nni+malloc darts DARTS", "ours darts DARTS-1",
                "darts space, DARTS 1st order, NNI with our malloc setting / ours"),
               ("nni+malloc nb201 DARTS", "ours nb201 DARTS-1",
                "nb201, DARTS 1st order, NNI with our malloc setting / ours"))


def per_round(run: str, key: str = "s_per_step") -> list[float]:
    fw, space, method, order = RUNS[run]
    return [next(r[key] for r in rows if r["round"] == k and r["framework"] == fw
                 and (r["space"], r["method"], r["order"]) == (space, method, order))
            for k in rounds]


def spread(v: list[float]) -> dict:
    return {"mean": st.mean(v), "std": st.stdev(v) if len(v) > 1 else 0.0,
            "min": min(v), "max": max(v), "per_round": v}


bs = rows[0]["batch_size"]
summary: dict = {"rounds": len(rounds), "batch_size": bs, "times": {}, "ratios": {}}
print(f"{len(rounds)} round(s), batch {bs}; seconds per search step, mean +- std over rounds")
print(f"{'':22} {'s/step':>17} {'min s/step':>11} {'img/s':>8}")
for run in RUNS:
    t, m = spread(per_round(run)), spread(per_round(run, "s_per_step_min"))
    summary["times"][run] = {"s_per_step": t, "s_per_step_min": m}
    print(f"{run:22} {t['mean']:8.3f} +- {t['std']:5.3f} {m['min']:11.3f} "
          f"{bs / t['mean']:8.1f}")
print("ratios per round (NNI / ours > 1: archsearch is faster)")
for a, b, what in RATIOS:
    ratio = spread([x / y for x, y in zip(per_round(a), per_round(b))])
    summary["ratios"][f"{a} / {b}"] = ratio
    print(f"  {what}: {ratio['mean']:.2f}x +- {ratio['std']:.2f} (min {ratio['min']:.2f}x, "
          f"max {ratio['max']:.2f}x; per round " + ", ".join(f"{x:.2f}" for x in ratio["per_round"])
          + ")")
if sys.argv[2]:
    with open(sys.argv[2], "w") as f:
        json.dump({"rows": rows, "summary": summary}, f, indent=1)
    print(f"rows and summary: {sys.argv[2]}")
PY
