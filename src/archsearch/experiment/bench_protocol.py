"""The protocols of ``archsearch bench``: what each query observes, and what the curve reports.

- ``oracle`` (oracle reward): a query observes the benchmark's metric itself (on NB201 the
  200-epoch test accuracy) and the curve is the best value observed so far; it measures search
  efficiency alone.
- ``validation`` (validation reward): a query observes ONE training seed's 200-epoch validation
  accuracy from a per-seed table (the ``tabular-seeds`` estimator: the seed slot drawn from the
  bench seed and the query number), and the curve is the benchmark's metric (test accuracy) of
  the architecture observed best so far. Between the oracle and the NB201 paper's protocol
  (12-epoch validation accuracy as the reward).
"""

from __future__ import annotations

from pathlib import Path

from archsearch.errors import UserError
from archsearch.registry import Spec
from archsearch.spaces.base import SearchSpace

PROTOCOLS = ("oracle", "validation")
ORACLE_TEXT = (
    "oracle-reward: each query observes the benchmark's value itself and the curve is the best "
    "value found so far; this differs from the NB201 paper's protocol (12-epoch validation "
    "accuracy as the reward, 200-epoch test accuracy reported)"
)
VALID_SEEDS_FILE = "nb201_cifar10_valid_seeds.csv"  # ../shared/data, PROVENANCE.md section 9
VALID_METRIC = "val_acc_200ep"
VALID_SEEDS_HELP = (f"one row per architecture and training seed: arch_str, seed_slot, "
                    f"{VALID_METRIC}; NB201's is ../shared/data/{VALID_SEEDS_FILE}")


def check_protocol(name: str) -> None:
    if name not in PROTOCOLS:
        raise UserError(f"--protocol is {name!r}; give oracle (each query observes --metric "
                        "itself) or validation (each query observes one training seed's "
                        "validation accuracy; --metric of the best observed is reported)")


def default_valid_seeds(benchmark: str) -> str:
    """The per-seed table beside the benchmark's (NB201's two files sit together)."""
    return str(Path(benchmark).parent / VALID_SEEDS_FILE)


def describe(metric: str, valid_seeds: str | None) -> str:
    """The protocol, as the bench's output states it."""
    if valid_seeds is None:
        return ORACLE_TEXT
    return (f"validation-reward: each query observes one training seed's {VALID_METRIC} from "
            f"{Path(valid_seeds).name} (the seed drawn from the bench seed and the query "
            f"number) and the curve is the {metric} of the architecture with the best value "
            "observed so far")


def observed_estimator(benchmark: str, metric: str, valid_seeds: str | None, seed: int) -> Spec:
    """The estimator a run's queries go to."""
    if valid_seeds is None:
        return Spec("tabular", {"benchmark": benchmark, "metric": metric})
    return Spec("tabular-seeds", {"benchmark": valid_seeds, "metric": VALID_METRIC, "seed": seed})


def check_valid_seeds(valid_seeds: str, benchmark: str, metric: str,
                      space: SearchSpace | None = None) -> None:
    """Refuse a per-seed table that is missing, malformed, or holds an architecture the
    benchmark has no ``metric`` for (the curve could not report it)."""
    from archsearch.estimators.tabular import TabularEstimator
    from archsearch.estimators.tabular_seeds import SeedDrawTabularEstimator

    if not Path(valid_seeds).is_file():
        raise UserError(f"--protocol validation observes per-seed validation accuracies from "
                        f"{valid_seeds!r}, which does not exist; give --valid-seeds CSV "
                        f"({VALID_SEEDS_HELP})")
    observed = SeedDrawTabularEstimator(valid_seeds, VALID_METRIC, space=space).table
    reported = TabularEstimator(benchmark, metric).values()
    missing = sorted(set(observed) - set(reported))
    if missing:
        raise UserError(f"{valid_seeds}: {len(missing)} architectures (the first {missing[0]!r}) "
                        f"have no {metric} in {benchmark}, which the validation protocol "
                        "reports; give the per-seed table of the benchmark's architectures")
