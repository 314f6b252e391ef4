"""The kill rate per module after re-running an earlier run's survivors.

``bash benchmarks/mutation.sh NAMES...`` re-runs only the mutants an earlier run did not catch
(``benchmarks/results/mutation_survivors_after.txt``: the survivors of the run recorded in
``mutation_after.json``). Every other mutant of those modules was caught then, and neither its
code nor the tests that caught it changed since, so it counts as caught. A mutant the re-run
checked takes its new status; a survivor it did not reach (stopped by a time limit) stays
not caught.

    python benchmarks/mutation_combine.py benchmarks/results/mutation_survivors_after.txt \\
        [--mutants mutants] [--others benchmarks/results/mutation_after.json] \\
        [--json benchmarks/results/mutation_after2.json]

Only the modules with a survivor in the list are reported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutation_summary import CAUGHT, module_name, status


def combine(survivors: set[str], mutants: Path) -> dict[str, Any]:
    modules: dict[str, Any] = {}
    for meta in sorted((mutants / "src").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not survivors & set(codes):
            continue
        rerun = {k: status(c) for k, c in codes.items() if status(c) != "not checked"}
        caught = sum(1 for k in codes if (rerun[k] in CAUGHT if k in rerun
                                          else k not in survivors))
        old = survivors & set(codes)
        modules[module_name(meta, mutants)] = {
            "total": len(codes), "caught": caught, "kill_rate": caught / len(codes),
            "old_survivors": len(old), "old_survivors_rerun": len(old & set(rerun)),
            "old_survivors_now_caught": sum(1 for k in old if rerun.get(k) in CAUGHT),
            "not_caught": sorted(k for k in codes if not (rerun[k] in CAUGHT if k in rerun
                                                           else k not in survivors))}
    total = sum(m["total"] for m in modules.values())
    caught = sum(m["caught"] for m in modules.values())
    return {"method": "re-run statuses for the mutants it checked; the earlier run's survivors "
                      "it did not reach stay not caught; every other mutant was caught before",
            "modules": modules,
            "overall": {"total": total, "caught": caught,
                        "kill_rate": caught / total if total else None}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("survivors", help="file of the earlier run's not-caught mutant names")
    p.add_argument("--mutants", default="mutants")
    p.add_argument("--others", help="an earlier summary JSON (mutation_after.json) whose rows "
                   "stand for the modules the re-run did not touch, for an overall rate")
    p.add_argument("--json")
    args = p.parse_args()
    names = {n.strip() for n in Path(args.survivors).read_text().split() if n.strip()}
    out = combine(names, Path(args.mutants))
    if args.others:
        rows = {**json.loads(Path(args.others).read_text())["modules"], **out["modules"]}
        total = sum(m["total"] for m in rows.values())
        caught = sum(m["caught"] for m in rows.values())
        out["overall_all_modules"] = {"total": total, "caught": caught,
                                      "kill_rate": caught / total}
        print(f"all core modules: {caught} of {total} caught, {100 * caught / total:.1f}%")
    for name, m in out["modules"].items():
        print(f"{name:32s} {m['total']:4d} mutants, {100 * m['kill_rate']:5.1f}% caught; old "
              f"survivors {m['old_survivors']}, re-run {m['old_survivors_rerun']}, now caught "
              f"{m['old_survivors_now_caught']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
