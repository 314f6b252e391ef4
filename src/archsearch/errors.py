"""Errors that are the user's to fix: the CLI prints their message and exits with code 2."""

from __future__ import annotations

from collections.abc import Iterable


class UserError(Exception):
    """Bad input: a wrong name, a malformed architecture, a missing file or column.

    The message alone must say what is wrong and how to fix it; no traceback is shown.
    """


class UnknownNameError(UserError, KeyError):
    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(
            f"unknown {kind} {name!r}; valid {kind} names: {', '.join(self.valid) or '(none)'}"
        )

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class ArchitectureError(UserError, ValueError):
    """A malformed or invalid architecture (string, JSON or choices)."""
