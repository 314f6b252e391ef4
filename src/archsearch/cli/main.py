"""``archsearch``: search | train | export | bench | show. User mistakes print one line, exit 2."""

from __future__ import annotations

import argparse
import logging
import sys

from archsearch import __version__
from archsearch.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    from archsearch.cli import bench, score, search, show, train

    parser = argparse.ArgumentParser(
        prog="archsearch",
        description="Neural architecture search: a search space, a strategy and an estimator.",
    )
    parser.add_argument("--version", action="version", version=f"archsearch {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (search, train, bench, score, show):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run_command(args) or 0)
    except UserError as exc:
        print(f"archsearch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())
