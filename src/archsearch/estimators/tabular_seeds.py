"""A table of several training seeds per architecture; each query observes one, drawn.

The CSV has one row per (architecture, training seed): an architecture column (``arch_str``),
a seed column (``seed_slot``: 0, 1, 2, ... the position of the seed, not its number) and a
numeric metric (``val_acc_200ep``), as in NAS-Bench-201's per-seed validation accuracies. A
query observes the metric of ONE of the architecture's seeds, the slot drawn by a generator
seeded from ``seed`` and the query number alone: the same seed and query observe the same slot
(a resumed or rerun run observes what the first did), and querying the same architecture again
draws afresh. That is a noisy reward, as a search that trains each candidate once would see.
The table has one fidelity: every budget is answered alike.

Checked when loaded: every value a finite number, no (architecture, slot) listed twice, every
string an architecture of the space.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np

from archsearch.errors import UserError
from archsearch.estimators.base import Estimator
from archsearch.estimators.tabular import check_space, csv_number, csv_reader, table_checksum
from archsearch.registry import ESTIMATORS
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.types import Budget, Result

SeedValues = dict[str, tuple[tuple[int, float], ...]]  # arch -> ((slot, value), ...) by slot


@lru_cache(maxsize=4)
def load_seed_table(path: str, arch_column: str, seed_column: str, metric: str,
                    _mtime: float) -> SeedValues:
    """Architecture string -> its (seed slot, value) pairs in slot order, checked."""
    slots: dict[str, dict[int, float]] = {}
    try:
        with open(path, newline="") as f:
            reader = csv_reader(f, path, [arch_column, seed_column, metric])
            for line, row in enumerate(reader, start=2):
                slot = csv_number(path, line, seed_column, row[seed_column])
                if slot != int(slot) or slot < 0:
                    raise UserError(f"{path}, line {line}: {seed_column} is {row[seed_column]}, "
                                    "not a seed position (0, 1, 2, ...)")
                seeds = slots.setdefault(row[arch_column], {})
                if int(slot) in seeds:
                    raise UserError(f"{path}, line {line}: {row[arch_column]!r} is listed twice "
                                    f"with {seed_column} {int(slot)}; keep one row per "
                                    "architecture and seed")
                seeds[int(slot)] = csv_number(path, line, metric, row[metric])
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a readable CSV table ({exc})") from None
    if not slots:
        raise UserError(f"{path}: the table has no rows")
    return {arch: tuple(sorted(seeds.items())) for arch, seeds in slots.items()}


@lru_cache(maxsize=4)
def _check_space_once(path: str, mtime: float, space: SearchSpace, archs: frozenset[str]) -> None:
    # a bench builds one estimator per seed in each process: parse the table's strings once
    check_space(archs, space, path)


def draw_slot(seed: int, query: int, n_slots: int) -> int:
    """The seed slot query ``query`` observes, of ``n_slots``: from (seed, query) alone."""
    return int(np.random.default_rng([seed, query]).integers(n_slots))


@ESTIMATORS.register("tabular-seeds")
class SeedDrawTabularEstimator(Estimator):
    def __init__(self, benchmark: str, metric: str = "val_acc_200ep", seed: int = 0,
                 arch_column: str = "arch_str", seed_column: str = "seed_slot",
                 space: SearchSpace | None = None) -> None:
        path = Path(benchmark)
        if not path.is_file():
            raise UserError(f"per-seed table {str(path)!r} does not exist (give a CSV file with "
                            f"one row per architecture and seed: {arch_column}, {seed_column}, "
                            f"{metric})")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UserError(f"tabular-seeds: seed must be an integer of at least 0, not {seed!r}")
        self.metric, self.seed = metric, seed
        self.checksum = table_checksum(path)
        mtime = path.stat().st_mtime
        self.table = load_seed_table(str(path), arch_column, seed_column, metric, mtime)
        if space is not None:
            _check_space_once(str(path), mtime, space, frozenset(self.table))
        self._next_query = 0  # for evaluate() called outside an experiment

    def evaluate(self, arch: Architecture, budget: Budget | None = None) -> Result:
        """Outside an experiment: each call is this instance's next query (0, 1, 2, ...)."""
        self._next_query += 1
        return self.evaluate_query(self._next_query - 1, arch, budget)

    def evaluate_query(self, query: int, arch: Architecture,
                       budget: Budget | None = None) -> Result:
        seeds = self.table.get(arch.to_str())
        if seeds is None:
            return Result.failed(f"{arch.to_str()} is not in the per-seed table")
        slot, value = seeds[draw_slot(self.seed, query, len(seeds))]
        return Result(value, {self.metric: value, "seed_slot": float(slot)})

    def values(self) -> dict[str, tuple[float, ...]]:
        """Architecture string -> its seeds' values, in slot order."""
        return {arch: tuple(v for _, v in seeds) for arch, seeds in self.table.items()}
