"""Summarise a finished ``mutmut run`` (benchmarks/mutation.sh): per core module, how many
mutants were killed, survived, timed out or had no test, the kill rate, and the survivors'
names; printed as a table and written as JSON.

The kill rate is over the mutants that were checked (a run restricted to some modules, or
stopped by its time limit, leaves the others "not checked"); it counts a mutant as caught when
a test failed on it (killed) or it ran past mutmut's time limit (timeout: the mutation made the
code hang, which the suite notices too); mutants no selected test reaches ("no tests") count as
not caught.

Reads the ``*.meta`` files mutmut leaves next to each mutated file under ``mutants/``. The exit
codes are mutmut 3's (``mutmut.stats.status_by_exit_code``, repeated here so that this script
imports without mutmut, as the suite's benchmark-script check does).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# mutmut 3.8.1, mutmut/stats.py
STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed", 3: "killed", 0: "survived", 5: "no tests", 2: "interrupted", None: "not checked",
    33: "no tests", 34: "skipped", 35: "suspicious", 36: "timeout", 37: "caught by type check",
    -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", -11: "segfault",
    -9: "segfault",
}
CAUGHT = ("killed", "timeout")
COLUMNS = ("killed", "timeout", "survived", "no tests", "suspicious", "segfault", "not checked")


def status(code: int | None) -> str:
    return STATUS_BY_EXIT_CODE.get(code, "suspicious")


def module_name(meta: Path, mutants: Path) -> str:
    """``mutants/src/archsearch/strategies/base.py.meta`` -> ``strategies/base.py``."""
    relative = meta.relative_to(mutants / "src" / "archsearch").as_posix()
    return relative.removesuffix(".meta")


def summarise(mutants: Path) -> dict[str, Any]:
    modules: dict[str, dict[str, Any]] = {}
    for meta in sorted((mutants / "src").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(status(code) for code in codes.values())
        total = sum(counts.values())
        checked = total - counts["not checked"]
        caught = sum(counts[s] for s in CAUGHT)
        modules[module_name(meta, mutants)] = {
            "total": total, **{s: counts[s] for s in COLUMNS},
            "kill_rate": caught / checked if checked else None,
            "not_caught": sorted(k for k, c in codes.items() if status(c) not in CAUGHT),
        }
    total = sum(m["total"] for m in modules.values())
    caught = sum(m[s] for m in modules.values() for s in CAUGHT)
    checked = total - sum(m["not checked"] for m in modules.values())
    overall = {"total": total, **{s: sum(m[s] for m in modules.values()) for s in COLUMNS},
               "kill_rate": caught / checked if checked else None}
    return {"modules": modules, "overall": overall}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def table(summary: dict[str, Any]) -> str:
    header = f"{'module':36}{'total':>6}" + "".join(f"{s:>12}" for s in COLUMNS) + "  kill rate"
    lines = [header, "-" * len(header)]
    rows = [*summary["modules"].items(), ("overall", summary["overall"])]
    for name, m in rows:
        rate = "-" if m["kill_rate"] is None else f"{100 * m['kill_rate']:.1f}%"
        lines.append(f"{name:36}{m['total']:>6}" + "".join(f"{m[s]:>12}" for s in COLUMNS)
                     + f"  {rate:>9}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=Path, default=ROOT / "mutants",
                        help="mutmut's working copy (default: ./mutants)")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--seconds", type=float, help="wall time of the run, recorded")
    parser.add_argument("--exit-code", type=int, help="mutmut's exit status, recorded")
    args = parser.parse_args()
    summary = summarise(args.mutants)
    if not summary["modules"]:
        raise SystemExit(f"no mutmut results under {args.mutants}: run benchmarks/mutation.sh")
    print(table(summary))
    if args.json is not None:
        record = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "commit": git_commit(),
            "machine": {"cpus": _cpu_count(), "processor": _cpu_model(),
                        "python": platform.python_version()},
            "tool": "mutmut 3.8.1 (pyproject.toml [tool.mutmut])",
            "wall_seconds": args.seconds,
            "mutmut_exit_code": args.exit_code,
            "complete": summary["overall"]["not checked"] == 0 and args.exit_code in (0, None),
            **summary,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.json}")


def _cpu_count() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
