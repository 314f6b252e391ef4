"""Coordinate-wise slice sampling (Neal 2003): the right moments on Gaussians and a bounded
density, seeded chains, the steps' bookkeeping and bad arguments refused."""

from __future__ import annotations

import numpy as np
import pytest

from archsearch.strategies.slice_sampling import slice_sample, slice_update


def gaussian(mean: np.ndarray, cov: np.ndarray):  # type: ignore[no-untyped-def]
    precision = np.linalg.inv(cov)
    return lambda x: -0.5 * float((x - mean) @ precision @ (x - mean))


def test_a_one_dimensional_gaussian_has_its_mean_and_variance() -> None:
    draws = slice_sample(gaussian(np.array([3.0]), np.array([[4.0]])), np.array([0.0]),
                         np.random.default_rng(0), samples=4000, burn_in=20, width=1.0)
    assert draws.shape == (4000, 1)
    assert draws.mean() == pytest.approx(3.0, abs=0.15)
    assert draws.var() == pytest.approx(4.0, rel=0.1)


def test_a_correlated_two_dimensional_gaussian_has_its_moments() -> None:
    mean, cov = np.array([1.0, -2.0]), np.array([[1.0, 0.6], [0.6, 2.0]])
    draws = slice_sample(gaussian(mean, cov), np.zeros(2), np.random.default_rng(1),
                         samples=4000, burn_in=20, thin=2, width=2.0)
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.12)
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.15)


def test_a_density_with_bounded_support_never_leaves_it() -> None:
    """Exponential(1) on x > 0 (log density -inf elsewhere), started far out in the tail."""
    draws = slice_sample(lambda x: -x[0] if x[0] > 0 else -np.inf, np.array([8.0]),
                         np.random.default_rng(2), samples=4000, burn_in=20, width=0.5)
    assert draws.min() > 0
    assert draws.mean() == pytest.approx(1.0, abs=0.08)


def test_same_seed_same_chain_other_seed_another() -> None:
    density = gaussian(np.zeros(3), np.eye(3))

    def chain(seed: int) -> np.ndarray:
        return slice_sample(density, np.ones(3), np.random.default_rng(seed), samples=20,
                            burn_in=3, thin=2)

    np.testing.assert_array_equal(chain(5), chain(5))
    assert not np.array_equal(chain(5), chain(6))


def test_burn_in_and_thinning_keep_the_right_sweeps() -> None:
    """The kept points are sweeps burn_in + thin, burn_in + 2 thin, ... of the same chain."""
    density = gaussian(np.zeros(2), np.eye(2))
    every = slice_sample(density, np.zeros(2), np.random.default_rng(3), samples=12)
    kept = slice_sample(density, np.zeros(2), np.random.default_rng(3), samples=3,
                        burn_in=3, thin=3)
    np.testing.assert_array_equal(kept, every[[5, 8, 11]])


def test_an_update_moves_only_its_coordinate_and_stays_in_the_slice() -> None:
    density = gaussian(np.zeros(3), np.eye(3))
    x = np.array([0.5, -1.0, 2.0])
    rng = np.random.default_rng(4)
    for _ in range(50):
        new, log_new = slice_update(density, x, density(x), 1, rng, width=0.3)
        assert new[0] == x[0] and new[2] == x[2] and log_new == density(new)
    # stepping out: a narrow start interval grows into a wide density, at most max_steps
    # widths in all (here 2 or 100)
    wide = gaussian(np.zeros(1), np.array([[100.0]]))

    def moves(max_steps: int) -> list[float]:
        return [abs(slice_update(wide, np.zeros(1), 0.0, 0, rng, 0.1, max_steps)[0][0])
                for _ in range(200)]

    assert max(moves(20)) < 2.0 and max(moves(1000)) > 10


def test_bad_arguments_are_refused() -> None:
    density = gaussian(np.zeros(1), np.eye(1))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="finite"):
        slice_sample(lambda x: -np.inf, np.zeros(1), rng, samples=2)
    for bad in ({"samples": 0}, {"samples": 2, "thin": 0}, {"samples": 2, "width": 0.0},
                {"samples": 2, "burn_in": -1}):
        with pytest.raises(ValueError):
            slice_sample(density, np.zeros(1), rng, **bad)  # type: ignore[arg-type]
