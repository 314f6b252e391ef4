"""Small helpers shared by the subcommands."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from archsearch.errors import UserError
from archsearch.experiment.storage import SQLiteStorage

DB_NAME = "trials.db"


def parse_options(items: Iterable[str] | None, flag: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict, values read as Python literals where they parse (else text)."""
    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} takes KEY=VALUE, got {item!r}")
        try:
            options[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            options[key] = raw
    return options


def open_run(run: str) -> SQLiteStorage:
    path = Path(run)
    db = path / DB_NAME if path.is_dir() else path
    if not db.is_file():
        raise UserError(f"no run at {run!r} (expected a run folder holding {DB_NAME})")
    return SQLiteStorage(db)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    a, b = flatten(old), flatten(new)
    return [f"  {k}: run has {a.get(k, '(unset)')!r}, now {b.get(k, '(unset)')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


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
