"""The GP's marginal posterior at many candidates equals GPyTorch's joint prediction's diagonal,
and the analytic acquisitions on it equal BoTorch's (log EI, PI, UCB); BO scores through them
when nothing is pending."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

pytest.importorskip("botorch")
pytestmark = pytest.mark.usefixtures("one_thread")


def fitted_gp(n: int = 25, d: int = 8, seed: int = 0):  # type: ignore[no-untyped-def]
    """A GP fitted on n random binary inputs with a noisy linear objective (outcomes far from
    0 and 1, so the Standardize transform matters); and 40 candidates."""
    import torch

    from archsearch.strategies import bo

    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.integers(0, 2, (n, d)), dtype=torch.float64)
    y = 90 + 3 * x[:, :1] - 2 * x[:, 1:2] + torch.tensor(rng.normal(0, 0.3, (n, 1)))
    candidates = torch.tensor(rng.integers(0, 2, (40, d)), dtype=torch.float64)
    return bo.fit_gp(x, y, seed=0), candidates, float(y.max())


def test_the_marginal_posterior_is_the_diagonal_of_gpytorchs_prediction() -> None:
    import torch

    from archsearch.predictors.gp_posterior import marginal_posterior

    model, candidates, _ = fitted_gp()
    with torch.no_grad():
        joint = model.posterior(candidates)
        mean, sd = marginal_posterior(model, candidates)
    np.testing.assert_allclose(mean.numpy(), joint.mean.squeeze(-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(sd.numpy(), joint.variance.sqrt().squeeze(-1).numpy(),
                               rtol=1e-4)
    assert sd.min() > 0.05  # unseen binary inputs: the posterior is not sure of them


@pytest.mark.parametrize("name", ["ei", "pi", "ucb"])
def test_the_analytic_acquisitions_are_botorchs(name: str) -> None:
    import torch
    from botorch.acquisition import (
        LogExpectedImprovement,
        ProbabilityOfImprovement,
        UpperConfidenceBound,
    )

    from archsearch.predictors.gp_posterior import MarginalAcquisition

    model, candidates, best = fitted_gp(seed=1)
    theirs = {"ei": lambda: LogExpectedImprovement(model, best),
              "pi": lambda: ProbabilityOfImprovement(model, best),
              "ucb": lambda: UpperConfidenceBound(model, 2.0)}[name]()
    x = candidates.unsqueeze(-2)  # (b, 1, d)
    with torch.no_grad():
        ours = MarginalAcquisition(name, model, best, 2.0)(x)
        expected = theirs(x)
    assert ours.shape == (40,)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-4, atol=1e-8)
    assert ours.std() > 1e-3  # the candidates' values differ: the comparison is not vacuous


def test_bo_scores_through_the_marginal_posterior_with_nothing_pending() -> None:
    from archsearch.predictors import gp_posterior
    from archsearch.registry import STRATEGIES
    from archsearch.testing import ToySpace
    from archsearch.testing.conformance import drive
    from archsearch.testing.toy import ToyEstimator

    space = ToySpace(5, 4)
    strategy = STRATEGIES.create("bo", space=space, seed=0, initial=3, maxiter=20)
    drive(strategy, ToyEstimator(space), 3)
    with mock.patch.object(gp_posterior, "marginal_posterior",
                           wraps=gp_posterior.marginal_posterior) as spy:
        strategy.ask()
    assert spy.call_count >= 1
