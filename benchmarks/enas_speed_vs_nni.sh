#!/usr/bin/env bash
# Issue 3: images/s of ENAS's shared-weights training step and reward step on the micro space,
# archsearch against NNI 3.0's ENAS (nni.nas.hub.pytorch.ENAS(width=16, num_cells=5,
# dataset='cifar') with nni.nas.strategy.ENAS), batch 32, CIFAR-shaped input, side by side.
#
# Two archsearch configurations are timed against the same NNI runs:
#   "loose": our default supernet (a cell's output concatenates its loose ends, as ENAS's does);
#   "all":   --output all, every intermediate node concatenated, as NNI 3.0's one-shot cells do
#            (its PathSamplingCell treats merge_op='loose_end' as 'all'): the fair comparison.
# Each round runs loose, all, NNI one after the other, so that load on the machine hits all three;
# the ratios are taken per round (NNI's s/batch over ours in the same round) and reported with
# their mean, std, min and max over the rounds.
#
# Environment: ROUNDS (default 2), BATCHES (archsearch's timed batches, default 20), NNI_BATCHES
# (NNI's, default 12; its first 2 are not timed), PYTHON (the project's interpreter, default
# .venv/bin/python), JSON (a file for every per-run row and the summary; optional).
# NNI goes into its own virtual environment (.venv-nni), never into the project's.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
if [ ! -x .venv-nni/bin/python ]; then
  python3 -m venv .venv-nni
  .venv-nni/bin/pip install --quiet --upgrade pip
  .venv-nni/bin/pip install --quiet "torch==2.13.0"
  # NNI's NAS needs pytorch-lightning without declaring it; newer versions break its ENAS
  .venv-nni/bin/pip install --quiet "nni==3.0" "pytorch-lightning==2.0.9" "setuptools<80" gym \
    "tianshou<0.5"
fi
rounds="${ROUNDS:-2}"
batches="${BATCHES:-20}"
nni_batches="${NNI_BATCHES:-12}"
out=$(mktemp)
nni_log="$out.nni.log"
tag() { sed "s/^{/{\"round\": $1, /"; }
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for r in $(seq "$rounds"); do
  "$py" benchmarks/enas_speed.py --batches "$batches" --output loose | grep '^{' | tag "$r" >> "$out"
  "$py" benchmarks/enas_speed.py --batches "$batches" --output all | grep '^{' | tag "$r" >> "$out"
  if ! .venv-nni/bin/python benchmarks/nni_enas_speed.py --batches "$nni_batches" \
      2>>"$nni_log" | grep '^{' | tag "$r" >> "$out"; then
    echo "NNI run failed; the end of its log ($nni_log):" >&2
    tail -20 "$nni_log" >&2
    exit 1
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
RUNS = {"archsearch loose": lambda r: r["framework"] == "archsearch" and r["output"] == "loose",
        "archsearch all": lambda r: r["framework"] == "archsearch" and r["output"] == "all",
        "nni": lambda r: r["framework"].startswith("nni")}
STEPS = (("train_s_per_batch", "training step"), ("reward_s_per_batch", "reward step"))


def per_round(run: str, key: str) -> list[float]:
    return [next(r[key] for r in rows if r["round"] == k and RUNS[run](r)) for k in rounds]


def spread(v: list[float]) -> dict:
    return {"mean": st.mean(v), "std": st.stdev(v) if len(v) > 1 else 0.0,
            "min": min(v), "max": max(v), "per_round": v}


bs = rows[0]["batch_size"]
summary: dict = {"rounds": len(rounds), "batch_size": bs, "times": {}, "ratios": {}}
print(f"{len(rounds)} round(s), batch {bs}; seconds per batch, mean +- std over rounds")
print(f"{'':17} {'train s/batch':>18} {'train img/s':>12} {'reward s/batch':>18} "
      f"{'reward img/s':>13}")
for run in RUNS:
    t, w = spread(per_round(run, "train_s_per_batch")), spread(per_round(run, "reward_s_per_batch"))
    summary["times"][run] = {"train_s_per_batch": t, "reward_s_per_batch": w}
    print(f"{run:17} {t['mean']:9.3f} +- {t['std']:5.3f} {bs / t['mean']:12.1f} "
          f"{w['mean']:9.3f} +- {w['std']:5.3f} {bs / w['mean']:13.1f}")
print("ratios (NNI's s/batch / ours, per round; > 1: archsearch is faster)")
for run, what in (("archsearch loose", "our default network (loose ends) vs NNI"),
                  ("archsearch all", "NNI's output rule (--output all) vs NNI")):
    summary["ratios"][run] = {}
    for key, name in STEPS:
        ratio = spread([n / a for n, a in zip(per_round("nni", key), per_round(run, key))])
        summary["ratios"][run][key] = ratio
        print(f"  {what}, {name}: {ratio['mean']:.2f}x +- {ratio['std']:.2f} "
              f"(min {ratio['min']:.2f}x, max {ratio['max']:.2f}x; per round "
              + ", ".join(f"{x:.2f}" for x in ratio["per_round"]) + ")")
if sys.argv[2]:
    with open(sys.argv[2], "w") as f:
        json.dump({"rows": rows, "summary": summary}, f, indent=1)
    print(f"rows and summary: {sys.argv[2]}")
PY
