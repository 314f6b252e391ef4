"""Look an architecture up in a table (a tabular benchmark such as NAS-Bench-201).

Any CSV with an architecture column (``arch_str`` by default, holding the space's canonical
strings) and a numeric metric column chosen by name. The reward is the table's value itself:
the "oracle-reward" protocol, which is easier than the NB201 paper's (12-epoch validation
accuracy as reward, final test accuracy reported).

Budgets (multi-fidelity strategies) map to the table in one of two ways:

- ``budget_metrics={12: "test_acc_12ep", 200: "test_acc_200ep"}``: one column per budget in
  epochs (NB201's 12- and 200-epoch results), with ``budget_costs`` naming each budget's cost
  column (seconds) if the table has one;
- ``fidelity_column="epoch"``: one row per (architecture, epoch), as in a table of learning
  curves; ``metric`` is read from the row of the budget's epoch.

``cost_column`` is the simulated cost (seconds) of a row at the default budget. A budget the
table has no entry for fails the trial, saying which budgets it has.

Tables are checked when loaded: every value read must be a finite number, an architecture may
appear twice only with the same values, and, given a space, every architecture string must
parse in it. ``checksum`` (SHA-256 of the file) lets a run notice that its table changed.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from archsearch.errors import ArchitectureError, UserError
from archsearch.estimators.base import Estimator
from archsearch.registry import ESTIMATORS
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.types import Budget, Result

Key = tuple[str, float | None]  # (architecture string, budget epochs or None)


def table_checksum(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def csv_number(path: str, line: int, column: str, text: str | None) -> float:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"{path}, line {line}: {column} is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise UserError(f"{path}, line {line}: {column} is {text}, not a finite number")
    return value


def csv_reader(f: Any, path: str, needed: list[str]) -> csv.DictReader:
    try:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a readable CSV table ({exc})") from None
    for column in needed:
        if column not in columns:
            raise UserError(f"{path}: no column {column!r}; its columns are: {', '.join(columns)}")
    return reader


def check_space(archs: Iterable[str], space: SearchSpace, path: str) -> None:
    """Refuse a table holding a string that is not an architecture of ``space``."""
    for arch in sorted(archs):
        try:
            space.parse(arch)
        except ArchitectureError as exc:
            shown = arch if len(arch) <= 80 else arch[:77] + "..."
            raise UserError(f"{path}: {shown!r} is not an architecture of space "
                            f"{space.name!r} ({exc}); is this the right --space?") from None


@lru_cache(maxsize=8)
def load_table(path: str, arch_column: str, fields: tuple[tuple[str, float | None, str], ...],
               fidelity_column: str | None, _mtime: float) -> dict[Key, dict[str, float]]:
    """(arch, budget epochs) -> {name: value} for ``fields`` = (name, budget epochs, column):
    the values a lookup needs, checked as described in the module docstring."""
    needed = [arch_column] + sorted({c for _, _, c in fields})
    needed += [fidelity_column] if fidelity_column else []
    table: dict[Key, dict[str, float]] = {}
    first_line: dict[Key, int] = {}
    try:
        with open(path, newline="") as f:
            for line, row in enumerate(csv_reader(f, path, needed), start=2):
                arch = row[arch_column]
                fidelity = (None if fidelity_column is None
                            else csv_number(path, line, fidelity_column, row[fidelity_column]))
                for name, epochs, column in fields:
                    key = (arch, fidelity if fidelity_column else epochs)
                    value = csv_number(path, line, column, row[column])
                    entry = table.setdefault(key, {})
                    if name in entry and entry[name] != value:
                        raise UserError(
                            f"{path}: {arch!r} is listed twice with different {column} "
                            f"(lines {first_line[key]} and {line}); keep one row per "
                            "architecture" + (" and fidelity" if fidelity_column else ""))
                    entry[name] = value
                    first_line.setdefault(key, line)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a readable CSV table ({exc})") from None
    if not table:
        raise UserError(f"{path}: the table has no rows")
    return table


@ESTIMATORS.register("tabular")
class TabularEstimator(Estimator):
    def __init__(self, benchmark: str | os.PathLike[str], metric: str,
                 arch_column: str = "arch_str", space: SearchSpace | None = None,
                 cost_column: str | None = None,
                 budget_metrics: dict[Any, str] | None = None,
                 budget_costs: dict[Any, str] | None = None,
                 fidelity_column: str | None = None) -> None:
        path = Path(benchmark)
        if not path.is_file():
            raise UserError(f"benchmark table {str(path)!r} does not exist (give a CSV file)")
        if budget_metrics and fidelity_column:
            raise UserError("tabular: give budget_metrics (one column per budget) or "
                            "fidelity_column (one row per budget), not both")
        self.metric = metric
        self.checksum = table_checksum(path)
        self.by_column = {float(k): v for k, v in (budget_metrics or {}).items()}
        self.fidelity_column = fidelity_column
        fields: list[tuple[str, float | None, str]] = [("objective", None, metric)]
        if cost_column:
            fields.append(("cost", None, cost_column))
        for epochs, column in self.by_column.items():
            fields.append(("objective", epochs, column))
        for epochs, column in (budget_costs or {}).items():
            fields.append(("cost", float(epochs), column))
        self.table = load_table(str(path), arch_column, tuple(fields), fidelity_column,
                                path.stat().st_mtime)
        # a table of learning curves answers the default budget with its last epoch
        self.default_epochs = max(self.budgets()) if fidelity_column else None
        if space is not None:
            self._check_space(space, str(path))

    def _check_space(self, space: SearchSpace, path: str) -> None:
        check_space({a for a, _ in self.table}, space, path)

    def _key(self, arch: Architecture | str, budget: Budget | None) -> Key:
        text = arch if isinstance(arch, str) else arch.to_str()
        epochs = None if budget is None else budget.epochs
        if epochs is None:
            return (text, self.default_epochs)
        if not self.by_column and not self.fidelity_column:
            return (text, None)  # a single-fidelity table answers every budget alike
        return (text, float(epochs))

    def budgets(self) -> list[float]:
        """The budgets (epochs) the table has entries for."""
        return sorted({b for _, b in self.table if b is not None})

    def evaluate(self, arch: Architecture, budget: Budget | None = None) -> Result:
        key = self._key(arch, budget)
        entry = self.table.get(key)
        if entry is None or "objective" not in entry:
            if key[1] is not None and any(a == key[0] for a, _ in self.table):
                have = ", ".join(f"{b:g}" for b in self.budgets()[:12])
                return Result.failed(f"no entry for {key[0]} at {key[1]:g} epochs "
                                     f"(the table's budgets: {have}...)")
            return Result.failed(f"{arch.to_str()} is not in the benchmark table")
        value = entry["objective"]
        metrics = {self.metric: value}
        if key[1] is not None:
            metrics["epochs"] = key[1]
        return Result(value, metrics, entry.get("cost", 0.0))

    def values(self) -> dict[str, float]:
        """Architecture string -> objective at the default budget (the ground truth)."""
        return {a: e["objective"] for (a, b), e in self.table.items()
                if b == self.default_epochs and "objective" in e}

    def best(self) -> float:
        return max(self.values().values())
