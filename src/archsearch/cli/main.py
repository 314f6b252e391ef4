"""``archsearch``: search | train | export | bench | score | show | methods.

User mistakes print one line and exit 2, never a traceback. SIGTERM stops like Ctrl-C (finished
work kept, exit 130 after the message); a closed output pipe (``archsearch show RUN | head``)
ends quietly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from archsearch import __version__
from archsearch.allocator import keep_freed_memory
from archsearch.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    from archsearch.cli import bench, methods, score, search, show, train

    parser = argparse.ArgumentParser(
        prog="archsearch",
        description="Neural architecture search: a search space, a method and an estimator.",
    )
    parser.add_argument("--version", action="version", version=f"archsearch {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (search, train, bench, score, show, methods):
        module.add_parser(sub)
    return parser


def shorten(message: str, width: int = 400) -> str:
    """Each line of ``message`` cut to ``width`` characters (a 100,000-character architecture
    string is not echoed back whole)."""
    return "\n".join(line if len(line) <= width else
                     f"{line[:width]}... ({len(line):,} characters)"
                     for line in message.splitlines())


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a SIGTERM stops the run like Ctrl-C: cleanly, work kept


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    keep_freed_memory()  # fewer page faults in every training step (archsearch.allocator)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        code = int(args.run_command(args) or 0)
        sys.stdout.flush()  # a reader that went away (| head) shows here, not at exit
        return code
    except UserError as exc:
        print(f"archsearch {args.command}: error: {shorten(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:  # a full disk, a read-only folder: what and where, no traceback
        if args.verbose >= 2:
            raise
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"archsearch {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


def entry() -> None:
    sys.exit(main())
