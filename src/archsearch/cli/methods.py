"""``archsearch methods [NAME]``: the search methods, one line each, or one method's options
with their defaults, the paper's values and its presets."""

from __future__ import annotations

import argparse
import json

from archsearch import methods
from archsearch.cli.common import table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list the search methods, or show one's options",
                       description="archsearch methods [NAME]")
    p.add_argument("name", nargs="?", help="a method: its options, defaults and presets")
    p.set_defaults(run_command=run)


def run(args: argparse.Namespace) -> int:
    if args.name is None:
        rows = [[m.name, m.kind, m.summary] for m in map(methods.get, methods.names())]
        print(table(rows, ["method", "kind", "summary"]))
        print("\n`archsearch methods NAME` shows a method's options; `archsearch search "
              "--method NAME --method-opt KEY=VALUE` sets them.")
        return 0
    method = methods.get(args.name)
    print(f"{method.name} ({method.kind}): {method.summary}")
    if method.reference:
        print(f"  {method.reference}")
    print(f"  default space: {method.default_space}"
          + (f"; trains the {method.estimator} estimator" if method.estimator else ""))
    rows = [[name, kind, json.dumps(default), "-" if paper is None else json.dumps(paper), text]
            for name, kind, default, text, paper in method.options()]
    print("\noptions (--method-opt KEY=VALUE):")
    print(table(rows, ["option", "type", "default", "paper", ""]))
    if method.presets:
        print("\npresets (the defaults on a space, before your options; '*': every space):")
        for space, sections in method.presets.items():
            for section, options in sections.items():
                print(f"  {space:>10} {section:>9}: " + ", ".join(
                    f"{k}={json.dumps(v)}" for k, v in options.items()))
    if method.notes:
        print(f"\ndefaults that differ from the paper: {method.notes}")
    return 0
