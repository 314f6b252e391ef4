#!/usr/bin/env bash
# Issue 4: ENAS recurrent cells on Penn Treebank at a 2-core scale. Search (shared weights +
# controller), then the derived cell, 3 random cells and an LSTM with the derived model's
# parameter count (+-5%), all retrained from scratch for the same epochs; test perplexity.
# Defaults take ~1.5 h with one thread; THREADS=2 is faster when nothing else runs.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${DATA:-../shared/data/ptb}"
if [ ! -f "$data/ptb.train.txt" ]; then
  echo "no Penn Treebank at $data (ptb.{train,valid,test}.txt); set DATA=folder" >&2; exit 2
fi
out="${OUT:-runs/bench-enas-ptb}"  # the run (ignored); the summary goes to benchmarks/results
rm -rf "$out"; mkdir -p "$out" benchmarks/results
export OMP_NUM_THREADS="${THREADS:-1}"
# 4 search epochs of 300 BPTT steps each (~1.4 epochs of PTB in all), 50 controller steps after
# each, no uniform warm-up; retraining: 2 full epochs of PTB per model, 200 hidden units.
/usr/bin/time -f "wall %e s" .venv/bin/archsearch search --space enas-rnn --data "$data" \
  --seed "${SEED:-0}" --epochs "${EPOCHS:-4}" --final-epochs "${FINAL_EPOCHS:-2}" \
  --baseline-random 3 --strategy-opt warmup_epochs=0 --strategy-opt controller_steps=50 \
  --estimator-opt max_steps="${STEPS:-300}" --run "$out/run" --no-progress 2>&1 | tee "$out/log.txt"
.venv/bin/python - "$out" benchmarks/results/enas_ptb.json <<'PY'
import json, sqlite3, statistics, sys
out, dest = sys.argv[1], sys.argv[2]
db = sqlite3.connect(f"{out}/run/trials.db")
meta = {k: json.loads(v) for k, v in db.execute("select key, value from meta")}
rows = meta["final"]["rows"]
summary = {
    "search_seconds": meta["search_seconds"],
    "enas": rows["best"]["metrics"],
    "random": [r["metrics"] for r in rows["random"]],
    "random_mean_test_ppl": statistics.mean(r["metrics"]["test_ppl"] for r in rows["random"]),
    "lstm": rows["baselines"][0]["metrics"] if rows["baselines"] else None,
    "arch": rows["best"]["arch"],
}
json.dump(summary, open(dest, "w"), indent=1)
print(f"test ppl: ENAS {summary['enas']['test_ppl']:.1f} ({summary['enas']['params_m']:.2f}M) | "
      f"random mean {summary['random_mean_test_ppl']:.1f} "
      f"({', '.join('%.1f' % r['test_ppl'] for r in summary['random'])}) | "
      f"LSTM {summary['lstm']['test_ppl']:.1f} ({summary['lstm']['params_m']:.2f}M)")
PY
