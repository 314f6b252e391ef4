"""The bo strategy's options: hyperparameters integrated out by slice sampling ("mcmc": the
density, reproducible and resumable proposals, an acquisition that is not the fitted one's),
EI/PI's xi, GP-UCB's beta schedule, and bad values refused with the valid names."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest

from archsearch import methods
from archsearch.errors import UnknownNameError
from archsearch.registry import STRATEGIES
from archsearch.strategies import bo
from archsearch.testing import ToySpace, conformance
from archsearch.testing.conformance import drive
from archsearch.testing.toy import ToyEstimator

pytest.importorskip("botorch")
pytestmark = pytest.mark.usefixtures("one_thread")
SPACE = ToySpace(5, 4)
QUICK = {"initial": 3, "mc_samples": 16, "maxiter": 20}
MCMC = {**QUICK, "hyperparameters": "mcmc", "mcmc_samples": 3, "mcmc_burn_in": 2,
        "mcmc_thin": 1}


def create(**options):  # type: ignore[no-untyped-def]
    return STRATEGIES.create("bo", space=SPACE, **options)


def recording_acquisitions(calls: list[dict]):  # type: ignore[no-untyped-def]
    """bo.acquisition_function, recording each call's arguments."""
    real = bo.acquisition_function

    def record(name, model, best, beta, samples, seed, pending):  # type: ignore[no-untyped-def]
        calls.append({"model": model, "best": best, "beta": beta})
        return real(name, model, best, beta, samples, seed, pending)

    return mock.patch.object(bo, "acquisition_function", record)


# ---- hyperparameters="mcmc" ---------------------------------------------------------------

def test_the_sampled_density_is_the_marginal_likelihood_with_priors() -> None:
    """At random hyperparameters: GPyTorch's exact marginal log likelihood (times n, with the
    model's priors) plus the log transform's Jacobian; zero density past a constraint."""
    import torch
    from gpytorch.mlls import ExactMarginalLogLikelihood

    from archsearch.strategies.gp_hyperparameters import HyperparameterPosterior

    rng = np.random.default_rng(0)
    x = torch.tensor(rng.integers(0, 2, (15, 6)), dtype=torch.float64)
    y = torch.tensor(rng.normal(size=(15, 1)), dtype=torch.float64)
    posterior = HyperparameterPosterior(bo.fit_gp(x, y, seed=0))
    start = posterior.start()
    assert start.shape == (6 + 1 + 1,)  # log lengthscales, log noise, mean constant
    for _ in range(3):
        theta = start + rng.normal(0, 0.5, start.shape)
        model = posterior.load(bo.gp_model(x, y), theta).train()
        np.testing.assert_allclose(HyperparameterPosterior(model).start(), theta, atol=1e-12)
        with torch.no_grad():
            mll = ExactMarginalLogLikelihood(model.likelihood, model)
            expected = float(mll(model(*model.train_inputs), model.train_targets)) * 15
        assert posterior(theta) - theta[:7].sum() == pytest.approx(expected, abs=1e-5)
    below = start.copy()
    below[6] = math.log(1e-5)  # noise under its 1e-4 bound
    assert posterior(below) == -math.inf


@pytest.mark.slow
def test_mcmc_proposes_reproducibly_and_resumes_exactly() -> None:
    def factory(space, seed):  # type: ignore[no-untyped-def]
        return STRATEGIES.create("bo", space=space, seed=seed, **MCMC)

    conformance.check_reproducible(factory, SPACE, n=6)
    conformance.check_resumes(factory, SPACE, n=8, cut=5)  # cut after 2 model-based asks


def test_mcmc_scores_with_one_gp_per_sample_and_integrates_their_acquisitions() -> None:
    fitted = create(seed=0, **QUICK)
    drive(fitted, ToyEstimator(SPACE), 8)
    sampled = create(seed=0, **{**MCMC, "mcmc_samples": 4})
    sampled.load_state_dict(fitted.state_dict())  # the same results, RNG and fit start
    archs, x = fitted.candidates()
    calls: list[dict] = []
    with recording_acquisitions(calls):
        ours = sampled.acquisition_values(x)
    lengthscales = {tuple(c["model"].covar_module.lengthscale.reshape(-1).tolist())
                    for c in calls}
    assert len(calls) == 4 and len(lengthscales) == 4  # four GPs, four hyperparameter samples
    theirs = fitted.acquisition_values(x)
    assert ours.shape == theirs.shape == (len(archs),)
    assert not np.allclose(ours.numpy(), theirs.numpy(), atol=1e-3)  # the option matters


def test_the_integrated_log_ei_is_the_log_of_the_mean_ei() -> None:
    import torch

    log_ei = torch.log(torch.tensor([[0.1, 0.4], [0.3, 0.2]], dtype=torch.float64))
    np.testing.assert_allclose(bo.combine_acquisitions("ei", log_ei).exp().numpy(), [0.2, 0.3])
    values = torch.tensor([[0.1, 0.4], [0.3, 0.2]], dtype=torch.float64)
    np.testing.assert_allclose(bo.combine_acquisitions("pi", values).numpy(), [0.2, 0.3])
    np.testing.assert_array_equal(bo.combine_acquisitions("ei", log_ei[:1]), log_ei[0])


# ---- xi -----------------------------------------------------------------------------------

def test_xi_moves_eis_choice_from_a_sure_small_gain_to_an_uncertain_one() -> None:
    """A GP on a rising line: at 0.55 (just past the best, 1.0) the mean is a little above the
    best and certain, at 1.0 (far from the data) lower and uncertain. EI over the best picks
    the first; over the best plus 0.3, the second."""
    import torch

    x = torch.linspace(0, 0.5, 6, dtype=torch.float64).unsqueeze(-1)
    model = bo.gp_model(x, 2 * x)
    model.covar_module.lengthscale = torch.tensor([[0.2]], dtype=torch.float64)
    model.likelihood.noise = torch.tensor([1e-4], dtype=torch.float64)
    model.eval()
    candidates = torch.tensor([[[0.55]], [[1.0]]], dtype=torch.float64)
    with torch.no_grad():
        sigma = model.posterior(candidates.squeeze(-2)).variance.sqrt().squeeze(-1)
        chosen = [int(bo.acquisition_function("ei", model, 1.0 + xi, 2.0, 256, 0, None)(
            candidates).argmax()) for xi in (0.0, 0.3)]
    assert sigma[1] > 3 * sigma[0] and chosen == [0, 1]


@pytest.mark.parametrize("acquisition", ["ei", "pi"])
def test_xi_is_added_to_the_best_result(acquisition: str) -> None:
    strategy = create(seed=0, acquisition=acquisition, xi=0.25, **QUICK)
    drive(strategy, ToyEstimator(SPACE), 3)
    calls: list[dict] = []
    with recording_acquisitions(calls):
        strategy.ask()
    assert calls[0]["best"] == max(v for _, v in strategy.observed) + 0.25


# ---- beta_schedule ------------------------------------------------------------------------

def test_srinivas_beta_is_gp_ucbs_finite_domain_schedule() -> None:
    assert bo.srinivas_beta(3, 1000, 0.1) == pytest.approx(
        2 * math.log(1000 * 9 * math.pi ** 2 / 0.6))
    betas = [bo.srinivas_beta(t, 1000, 0.1) for t in range(1, 30)]
    assert all(a < b for a, b in zip(betas, betas[1:]))  # grows with t, like log t
    assert bo.srinivas_beta(5, 1000, 0.01) > bo.srinivas_beta(5, 1000, 0.1)  # surer: wider


def test_ucb_passes_the_scheduled_beta() -> None:
    calls: list[dict] = []
    constant = create(seed=0, acquisition="ucb", beta=1.5, **QUICK)
    scheduled = create(seed=0, acquisition="ucb", beta_schedule="srinivas", delta=0.2, **QUICK)
    with recording_acquisitions(calls):
        drive(constant, ToyEstimator(SPACE), 4)
        drive(scheduled, ToyEstimator(SPACE), 5)
    assert calls[0]["beta"] == 1.5
    # the scheduled strategy's asks 4 and 5: t = 4 and 5 results so far, plus one
    unseen = SPACE.size() - np.arange(3, 5)
    assert [c["beta"] for c in calls[1:]] == [pytest.approx(bo.srinivas_beta(t, n, 0.2))
                                              for t, n in zip((4, 5), unseen)]
    assert calls[1]["beta"] < calls[2]["beta"]


# ---- validation and the method's options ------------------------------------------------

@pytest.mark.parametrize(("option", "valid"), [("acquisition", "ei, pi, ucb"),
                                               ("hyperparameters", "mcmc, mll"),
                                               ("beta_schedule", "constant, srinivas")])
def test_an_unknown_name_lists_the_valid_ones(option: str, valid: str) -> None:
    with pytest.raises(UnknownNameError, match=f"valid {option} names: {valid}"):
        create(**{option: "nope"})


@pytest.mark.parametrize("bad", [{"mcmc_samples": 0}, {"mcmc_thin": 0}, {"mcmc_burn_in": -1},
                                 {"mcmc_width": 0.0}, {"xi": -0.1}, {"delta": 0.0},
                                 {"delta": 1.0}])
def test_bad_values_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        create(**bad)


def test_the_new_options_are_listed_by_methods_bo() -> None:
    options = {name: default for name, _, default, *_ in methods.get("bo").options()}
    assert options["hyperparameters"] == "mll" and options["beta_schedule"] == "constant"
    assert {"mcmc_samples": 10, "mcmc_burn_in": 10, "mcmc_thin": 2, "mcmc_width": 1.0,
            "xi": 0.0, "delta": 0.1}.items() <= options.items()
