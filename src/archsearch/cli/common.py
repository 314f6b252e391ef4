"""Small helpers shared by the subcommands."""

from __future__ import annotations

import ast
import math
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from archsearch.errors import UserError
from archsearch.experiment.storage import SQLiteStorage

DB_NAME = "trials.db"


def parse_options(items: Iterable[str] | None, flag: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict, values read as Python literals where they parse (else text);
    ``true`` and ``false`` in any case are booleans, as in the TOML of a run's config."""
    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} takes KEY=VALUE, got {item!r}")
        if raw.lower() in ("true", "false"):
            options[key] = raw.lower() == "true"
            continue
        try:
            options[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            options[key] = raw
    return options


def open_run(run: str) -> SQLiteStorage:
    """A run's database, read-only (nothing is written into it, or into any file given)."""
    path = Path(run)
    db = path / DB_NAME if path.is_dir() else path
    if not db.is_file():
        raise UserError(f"no run at {run!r} (expected a run folder holding {DB_NAME})")
    try:
        return SQLiteStorage(db, readonly=True)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{db} is damaged or not an archsearch run database ({exc})") from None


def check_output(path: str | None) -> None:
    """Refuse an output file that cannot be written, before any work is done."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise UserError(f"output {path!r} is a folder; give a file name")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"cannot write {path!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UserError(f"cannot write {path!r}: permission denied")


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float made None (JSON has no NaN or infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
