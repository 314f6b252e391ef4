"""The bench's bookkeeping: the curve reports the test value of the architecture with the best
OBSERVED value so far, which need not be the best test value seen; without a reported table
(the oracle protocol) it reports the best observed value itself."""

from __future__ import annotations

import math

from archsearch.experiment.best_observed import BestObserved

# observed (noisy validation) and test values: b looks best but c is (and a beats b on test)
OBSERVED = [("a", 90.0), ("b", 95.0), ("x", None), ("c", 93.0), ("b2", 95.0)]
TEST = {"a": 94.0, "b": 91.0, "c": 99.0, "b2": 98.0}


def curves(reported: dict[str, float] | None) -> BestObserved:
    best = BestObserved(reported)
    for arch, value in OBSERVED:
        best.add(arch, value)
    return best


def test_the_curve_reports_the_test_value_of_the_best_observed_cell() -> None:
    best = curves(TEST)
    # b is observed best from query 2 on (a failed query and a later equal keep it), so the
    # curve reports b's 91 although a (94) and c (99) were seen: best observed != best test
    assert best.curve == [94.0, 91.0, 91.0, 91.0, 91.0]
    assert best.observed_curve == [90.0, 95.0, 95.0, 95.0, 95.0]
    assert best.best_arch == "b"


def test_without_a_reported_table_the_curve_is_the_best_observed_value() -> None:
    best = curves(None)
    assert best.curve == best.observed_curve == [90.0, 95.0, 95.0, 95.0, 95.0]


def test_before_any_success_the_curve_is_minus_infinity() -> None:
    best = BestObserved(TEST)
    best.add("x", None)
    best.add("a", 90.0)
    assert best.curve[0] == -math.inf and best.curve[1] == 94.0
