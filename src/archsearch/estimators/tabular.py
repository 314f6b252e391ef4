"""Look an architecture up in a table (a tabular benchmark such as NAS-Bench-201).

Any CSV with an architecture column (``arch_str`` by default, holding the space's canonical
strings) and a numeric metric column chosen by name. The reward is the table's value itself:
the "oracle-reward" protocol, which is easier than the NB201 paper's (12-epoch validation
accuracy as reward, final test accuracy reported).
"""

from __future__ import annotations

import csv
import math
import os
from functools import lru_cache
from pathlib import Path

from archsearch.errors import UserError
from archsearch.estimators.base import Estimator
from archsearch.registry import ESTIMATORS
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.types import Budget, Result


@lru_cache(maxsize=8)
def load_table(path: str, metric: str, arch_column: str, _mtime: float) -> dict[str, float]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        for column in (arch_column, metric):
            if column not in columns:
                raise UserError(
                    f"{path}: no column {column!r}; its columns are: {', '.join(columns)}"
                )
        table: dict[str, float] = {}
        for line, row in enumerate(reader, start=2):
            try:
                table[row[arch_column]] = float(row[metric])
            except (TypeError, ValueError):
                raise UserError(
                    f"{path}, line {line}: {metric} is {row[metric]!r}, not a number"
                ) from None
    if not table:
        raise UserError(f"{path}: the table has no rows")
    return table


@ESTIMATORS.register("tabular")
class TabularEstimator(Estimator):
    def __init__(self, benchmark: str | os.PathLike[str], metric: str,
                 arch_column: str = "arch_str", space: SearchSpace | None = None) -> None:
        path = Path(benchmark)
        if not path.is_file():
            raise UserError(f"benchmark table {str(path)!r} does not exist (give a CSV file)")
        self.metric = metric
        self.table = load_table(str(path), metric, arch_column, path.stat().st_mtime)

    def evaluate(self, arch: Architecture, budget: Budget | None = None) -> Result:
        value = self.table.get(arch.to_str())
        if value is None or math.isnan(value):
            return Result.failed(f"{arch.to_str()} is not in the benchmark table")
        return Result(value, {self.metric: value})

    def best(self) -> float:
        return max(self.table.values())
