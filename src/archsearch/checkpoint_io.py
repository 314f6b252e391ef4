"""Reading the files archsearch writes with ``torch.save`` (checkpoints, weights), so that a
damaged or unreadable one is a clear error saying what it is and what to do, not a traceback."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from archsearch.errors import UserError

# what torch.load raises for a truncated, overwritten or foreign file
UNREADABLE = (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError)


def read_checkpoint(source: str | Path | io.BytesIO, what: str, fix: str,
                    map_location: torch.device | str | None = "cpu") -> Any:
    """``torch.load(source, weights_only=True)``; if it cannot be read, a UserError:
    "{what} is damaged ({the reason}); {fix}"."""
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except UNREADABLE as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UserError(f"{what} is damaged ({type(exc).__name__}: {reason}); {fix}") from None
