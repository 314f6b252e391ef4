"""Several ``archsearch bench --json`` reports of one protocol as one: a markdown table of the
best-so-far curves at the checkpoints, and one plot (``archsearch.report.plots.plot_benchmark``).

The reports must share the protocol, metric, benchmark space and seeds (runs of the same
seeds 0..N-1: a strategy's curve does not depend on what ran beside it); a strategy in several
reports is taken from the last. Wall seconds of the runs are summed (the whole comparison's
time, each run on one worker).

    python benchmarks/bench_merge.py benchmarks/results/nb201_oracle_bench.json \
        benchmarks/results/nb201_oracle_bananas.json --plot benchmarks/results/nb201_oracle_all.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

CHECKPOINTS = (10, 25, 50, 100, 150, 300)
SHARED = ("protocol", "metric", "space", "seeds")


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    first = reports[0]
    for other in reports[1:]:
        for key in SHARED:
            if other[key] != first[key]:
                raise SystemExit(f"the reports differ in {key}: {first[key]!r} vs {other[key]!r}")
    merged = {key: first[key] for key in SHARED}
    merged["results"] = {name: res for r in reports for name, res in r["results"].items()}
    merged["queries"] = max(r["queries"] for r in reports)
    merged["seconds"] = sum(r.get("seconds", 0.0) for r in reports)
    return merged


def markdown(report: dict[str, Any]) -> str:
    marks = [q for q in CHECKPOINTS if q <= report["queries"]]
    lines = [f"| strategy ({report['seeds']} seeds) | " + " | ".join(f"Q={q}" for q in marks)
             + " |", "|---|" + "---|" * len(marks)]
    for name, res in report["results"].items():
        cells = [f"{res['mean'][q - 1]:.2f} ± {res['std'][q - 1]:.2f}"
                 if q <= len(res["mean"]) else "-" for q in marks]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="+")
    p.add_argument("--plot")
    p.add_argument("--optimum", type=float, default=94.37, help="drawn as a line (NB201 C10)")
    args = p.parse_args()
    report = merge([json.loads(Path(f).read_text()) for f in args.reports])
    print(f"protocol: {report['protocol']}; {len(report['results'])} strategies; "
          f"{report['seconds']:.0f} s of runs in all")
    print(markdown(report))
    if args.plot:
        from archsearch.report.plots import plot_benchmark

        plot_benchmark(report, args.plot, args.optimum)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
