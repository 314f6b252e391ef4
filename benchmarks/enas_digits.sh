#!/usr/bin/env bash
# Issue 3: ENAS micro on digits (the main job), 3 seeds: the derived cell's test accuracy after
# retraining beside the mean of 5 random cells under the same protocol, and the search time.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
for seed in ${SEEDS:-0 1 2}; do
  /usr/bin/time -f "seed $seed: wall %e s" .venv/bin/archsearch search --seed "$seed" \
    --baseline-random 5 --run "$out/seed$seed" --no-progress > "$out/seed$seed.log"
  tail -1 "$out/seed$seed.log" >/dev/null
done
.venv/bin/python - "$out" ${SEEDS:-0 1 2} <<'PY'
import json, sqlite3, sys, statistics
out, seeds = sys.argv[1], sys.argv[2:]
rows = []
for s in seeds:
    db = sqlite3.connect(f"{out}/seed{s}/trials.db")
    meta = {k: json.loads(v) for k, v in db.execute("select key, value from meta")}
    final = meta["final"]["rows"]
    rnd = [r["metrics"]["test_acc"] for r in final["random"]]
    rows.append((s, final["best"]["metrics"]["test_acc"], statistics.mean(rnd), meta["search_seconds"]))
    print(f"seed {s}: derived {rows[-1][1]:.4f}  random mean {rows[-1][2]:.4f} (n={len(rnd)}, "
          f"{', '.join(f'{r:.4f}' for r in rnd)})  search {rows[-1][3]:.0f} s")
print(f"mean: derived {statistics.mean(r[1] for r in rows):.4f}, random "
      f"{statistics.mean(r[2] for r in rows):.4f}, search {statistics.mean(r[3] for r in rows):.0f} s")
PY
