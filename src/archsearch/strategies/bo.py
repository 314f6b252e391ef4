"""Bayesian optimisation with a Gaussian process (Snoek, Larochelle & Adams, NeurIPS 2012), on
BoTorch and GPyTorch (the optional extra ``archsearch[bo]``).

1. Propose ``initial`` random architectures (the first ones random search would propose with
   the same seed).
2. Then each ask, on every successful result so far:
   - encode the architectures (``one_hot``, or BANANAS' ``path`` encoding on cell spaces);
   - fit BoTorch's ``SingleTaskGP``: a Matern-5/2 kernel with one lengthscale per input
     dimension (ARD) under BoTorch's dimension-scaled lengthscale prior (Hvarfner et al.,
     ICML 2024), observation noise learned, outcomes standardised, hyperparameters by
     maximising the marginal likelihood (``fit_gpytorch_mll``);
   - with ``hyperparameters="mcmc"`` (Snoek et al.'s integrated acquisition, their section
     3.1), draw ``mcmc_samples`` hyperparameter settings from their posterior (below) and
     make one GP of each;
   - score the candidates with the acquisition: ``ei`` (log expected improvement over the
     best result so far plus ``xi``), ``ucb`` (upper confidence bound, ``beta`` below) or
     ``pi`` (probability of improvement over the best plus ``xi``); with no proposal
     pending, analytic on each candidate's marginal posterior
     (:mod:`~archsearch.predictors.gp_posterior`: exact, and over the 15,625 NB201 cells
     15-20x cheaper than BoTorch's analytic acquisitions through GPyTorch's prediction), else
     BoTorch's Monte Carlo ``qLogExpectedImprovement``, ``qUpperConfidenceBound`` or
     ``qProbabilityOfImprovement`` with a seeded quasi-random sampler; under several GPs the
     acquisition is their mean (for ``ei``: the log of the mean EI, ``logsumexp`` of the log
     EIs minus ``log n``);
   - the proposals not yet told are fantasised: they are the acquisition's ``X_pending``, so
     that a candidate is scored jointly with them (its value is the batch's improvement over
     what the pending ones are expected to bring), and proposals made in parallel differ;
   - candidates: every architecture of the space when it holds at most ``enumerate_limit``
     (the 15,625 NB201 cells: the acquisition is maximised exactly), else ``pool`` random
     samples plus up to ``mutations`` mutations of the 5 best (as BANANAS mutates); either
     way without the architectures proposed before (evaluated or pending);
   - propose the candidate with the largest acquisition (ties: the first in enumeration or
     pool order).

``xi`` (default 0, in the objective's units) is the trade-off parameter of PI and EI (Brochu,
Cora & de Freitas, arXiv 1012.2599, on PI and EI): improvement is counted over the best result
plus ``xi``, so that a larger one favours uncertain candidates. UCB ignores it.

UCB's ``beta``: BoTorch's ``qUpperConfidenceBound(beta)`` scores a sample ``y`` of the
posterior as ``mean + sqrt(beta * pi / 2) * |y - mean|``, whose expectation for one candidate
is ``mean + sqrt(beta) * sigma`` (as its analytic ``UpperConfidenceBound``; ``E|y - mean| =
sqrt(2 / pi) sigma``): ``beta`` is GP-UCB's beta, the square of the number of posterior
standard deviations (of the latent objective, noise not added). ``beta_schedule="constant"``
passes ``beta``; ``"srinivas"`` passes GP-UCB's ``beta_t = 2 log(|D| t^2 pi^2 / (6 delta))``
for a finite domain (Srinivas, Krause, Kakade & Seeger, ICML 2010, Theorem 1), ``t`` the number
of results so far plus 1 and ``|D|`` the number of candidates scored at that ask (the unseen
cells of an enumerated space, else the pool and its mutations); ``beta`` is then unused.

Hyperparameters by ``"mcmc"``: the chain
(:mod:`~archsearch.strategies.gp_hyperparameters`) runs over the log lengthscales, the log
noise (the log outputscale too, were the kernel scaled) and the mean constant, under the
exact marginal likelihood of the standardised outcomes and the model's priors, by
coordinate-wise slice sampling (:mod:`~archsearch.strategies.slice_sampling`, Neal 2003,
``mcmc_width`` the initial interval); ``mcmc_burn_in`` sweeps dropped, then one sample every
``mcmc_thin`` sweeps. BoTorch's fully Bayesian GPs (``SaasFullyBayesianSingleTaskGP``) need
NumPyro and JAX, which the project does not install: hence the hand-written sampler.
Deviation from Spearmint, which carries its chain from one iteration to the next: each ask's
chain starts afresh at that ask's marginal-likelihood fit (the state stays the fit's
hyperparameters, and a resumed run repeats the chain exactly).

Without BoTorch, creating the strategy fails with the extra to install. The model is fitted
within the ask (torch's RNG forked and seeded from the strategy's RNG, the sampler seeded the
same way, the chain from a numpy Generator seeded from the strategy's RNG) and never saved: a
resumed run refits on the same results with the same seed and continues exactly.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from archsearch.encodings import vector_encoder
from archsearch.errors import ArchitectureError, UnknownNameError, UserError
from archsearch.registry import STRATEGIES
from archsearch.spaces.base import Architecture, SearchSpace
from archsearch.strategies.bananas import mutation_candidates
from archsearch.strategies.base import Proposal, Strategy
from archsearch.types import Result

ACQUISITIONS = ("ei", "ucb", "pi")
HYPERPARAMETERS = ("mll", "mcmc")  # fitted by marginal likelihood, or sampled (Snoek et al.)
BETA_SCHEDULES = ("constant", "srinivas")


def import_botorch(needed_by: str = "the bo strategy") -> Any:
    try:
        import botorch
    except ImportError:
        raise UserError(f"{needed_by} needs BoTorch: pip install 'archsearch[bo]' "
                        "(or pip install botorch gpytorch)") from None
    return botorch


def enumerate_space(space: SearchSpace) -> list[Architecture]:
    """Every valid architecture of a (small) space, in the order of its choice vectors."""
    found = []
    for choices in itertools.product(*[range(d.n_options) for d in space.decisions()]):
        try:
            found.append(space.decode(choices))
        except ArchitectureError:
            continue
    return found


def gp_model(x: Any, y: Any) -> Any:
    """The unfitted SingleTaskGP on (n, d) inputs and (n, 1) outcomes: Matern-5/2 ARD under
    the dimension-scaled prior, learned noise, outcomes standardised (``fit_gp`` fits it; a
    saved fit's ``state_dict`` loads into it)."""
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior

    kernel = get_covar_module_with_dim_scaled_prior(x.shape[-1], use_rbf_kernel=False)
    return SingleTaskGP(x, y, covar_module=kernel, outcome_transform=Standardize(m=1))


def fit_gp(x: Any, y: Any, seed: int, start: dict[str, list[float]] | None = None,
           maxiter: int = 50) -> Any:
    """BoTorch's SingleTaskGP (Matern-5/2 ARD, dimension-scaled prior, learned noise,
    standardised outcomes) fitted by marginal likelihood, torch's RNG seeded locally; the
    hyperparameters start from ``start`` (raw values by parameter name) when given."""
    import torch
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = gp_model(x, y)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if start and name in start:
                    parameter.copy_(torch.tensor(start[name]).reshape(parameter.shape))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model),
                         optimizer_kwargs={"options": {"maxiter": maxiter}})
    return model


def acquisition_function(name: str, model: Any, best: float, beta: float, samples: int,
                         seed: int, pending: Any | None) -> Any:
    """The acquisition of (b, 1, d) candidates: with nothing pending the analytic one on each
    candidate's marginal posterior (exact, what the Monte Carlo estimate approximates, and
    without GPyTorch's joint predictive covariance: :mod:`gp_posterior`), else the Monte Carlo
    q-acquisition with the pending proposals fantasised."""
    import torch
    from botorch.acquisition import (
        qLogExpectedImprovement,
        qProbabilityOfImprovement,
        qUpperConfidenceBound,
    )
    from botorch.sampling import SobolQMCNormalSampler

    from archsearch.predictors.gp_posterior import MarginalAcquisition

    if pending is None:
        return MarginalAcquisition(name, model, best, beta)
    sampler = SobolQMCNormalSampler(torch.Size([samples]), seed=seed)
    if name == "ei":
        return qLogExpectedImprovement(model, best, sampler=sampler, X_pending=pending)
    if name == "ucb":
        return qUpperConfidenceBound(model, beta, sampler=sampler, X_pending=pending)
    return qProbabilityOfImprovement(model, best, sampler=sampler, X_pending=pending)


def srinivas_beta(t: int, candidates: int, delta: float) -> float:
    """GP-UCB's beta_t on a finite domain of ``candidates`` points, holding with probability
    at least 1 - ``delta`` (Srinivas et al., ICML 2010, Theorem 1)."""
    return 2 * math.log(candidates * t ** 2 * math.pi ** 2 / (6 * delta))


def combine_acquisitions(name: str, values: Any) -> Any:
    """(models, candidates) acquisition values -> (candidates,) integrated over the models:
    the mean, or for log EI the log of the mean EI."""
    import torch

    if len(values) == 1:
        return values[0]
    if name == "ei":
        return torch.logsumexp(values, dim=0) - math.log(len(values))
    return values.mean(0)


@STRATEGIES.register("bo")
class BayesianOptimisation(Strategy):
    """GP Bayesian optimisation (BoTorch): Matern-5/2 ARD GP, EI/UCB/PI, pending fantasised."""

    def __init__(self, space: SearchSpace, seed: int = 0, initial: int = 10,
                 acquisition: str = "ei", beta: float = 2.0, encoding: str = "one_hot",
                 max_paths: int | None = None, pool: int = 1000, mutations: int = 100,
                 parents: int = 5, enumerate_limit: int = 20_000, mc_samples: int = 256,
                 chunk: int = 2048, maxiter: int = 50, hyperparameters: str = "mll",
                 mcmc_samples: int = 10, mcmc_burn_in: int = 10, mcmc_thin: int = 2,
                 mcmc_width: float = 1.0, xi: float = 0.0, beta_schedule: str = "constant",
                 delta: float = 0.1, dedup: bool = True) -> None:
        super().__init__(space, seed, dedup)
        import_botorch()
        if acquisition not in ACQUISITIONS:
            raise UnknownNameError("acquisition", acquisition, ACQUISITIONS)
        if hyperparameters not in HYPERPARAMETERS:
            raise UnknownNameError("hyperparameters", hyperparameters, HYPERPARAMETERS)
        if beta_schedule not in BETA_SCHEDULES:
            raise UnknownNameError("beta_schedule", beta_schedule, BETA_SCHEDULES)
        if (min(initial, pool, parents, mc_samples, chunk, maxiter, mcmc_samples, mcmc_thin) < 1
                or min(mutations, beta, mcmc_burn_in, xi) < 0):
            raise ValueError("initial, pool, parents, mc_samples, chunk, maxiter, mcmc_samples "
                             "and mcmc_thin must be at least 1, mutations, beta, mcmc_burn_in "
                             "and xi not negative")
        if not mcmc_width > 0 or not 0 < delta < 1:
            raise ValueError("mcmc_width must be positive and delta in (0, 1)")
        self.encode = vector_encoder(space, encoding, max_paths)  # refuses a bad encoding now
        self.initial, self.acquisition, self.beta = initial, acquisition, beta
        self.pool, self.mutations, self.parents = pool, mutations, parents
        self.enumerate_limit, self.mc_samples, self.chunk = enumerate_limit, mc_samples, chunk
        self.maxiter, self.hyperparameters, self.xi = maxiter, hyperparameters, xi
        self.mcmc = {"samples": mcmc_samples, "burn_in": mcmc_burn_in, "thin": mcmc_thin,
                     "width": mcmc_width}
        self.beta_schedule, self.delta = beta_schedule, delta
        self.observed: list[tuple[str, float]] = []  # (arch, objective) of each success
        self.n_random = 0  # initial random proposals made
        self.hypers: dict[str, list[float]] | None = None  # the last fit's, the next's start
        self._all: tuple[list[Architecture], list[str], np.ndarray] | None = None  # enumerated

    def suggest(self) -> Architecture | None:
        if self.exhausted():
            return None
        if self.n_random < self.initial:
            self.n_random += 1
            return self.random_unseen()
        arch = self.best_candidate() if self.observed else None
        if arch is None or not self.propose(arch):
            return self.random_unseen()  # nothing to fit on, or no candidate left
        return arch

    def candidates(self) -> tuple[list[Architecture], np.ndarray]:
        """The architectures to score (not proposed before) and their encodings."""
        if self.space.size() <= self.enumerate_limit:
            if self._all is None:
                archs = enumerate_space(self.space)
                self._all = archs, [a.to_str() for a in archs], np.stack(
                    [self.encode(a) for a in archs])
            archs, keys, x = self._all
            keep = [i for i, key in enumerate(keys) if key not in self.seen]
            return [archs[i] for i in keep], x[keep]
        found: list[Architecture] = []
        keys = set(self.seen)
        for _ in range(self.pool):
            arch = self.space.sample(self.rng)
            if arch.to_str() not in keys:
                keys.add(arch.to_str())
                found.append(arch)
        ranked = sorted(self.observed, key=lambda o: -o[1])  # ties: the earlier result first
        parents = [self.space.parse(a) for a, _ in ranked[:self.parents]]
        if self.mutations:
            found += mutation_candidates(self.space, parents, keys, self.rng, self.mutations)
        if not found:
            return [], np.zeros((0, 0))
        return found, np.stack([self.encode(a) for a in found])

    def best_candidate(self) -> Architecture | None:
        """The candidate with the largest acquisition under GP(s) fitted on every result."""
        archs, x = self.candidates()
        if not archs:
            return None
        return archs[int(self.acquisition_values(x).argmax())]

    def acquisition_values(self, x: np.ndarray) -> Any:
        """The acquisition of each candidate encoding (a row of ``x``), the model refitted on
        every result (seeds drawn from the strategy's RNG)."""
        import torch

        seed = int(self.rng.integers(2**31))
        train_x = self.tensor(np.stack([self.encode(self.space.parse(a))
                                        for a, _ in self.observed]))
        train_y = self.tensor(np.array([[v] for _, v in self.observed]))
        model = fit_gp(train_x, train_y, seed, self.hypers, self.maxiter)
        self.hypers = {name: p.detach().reshape(-1).tolist()
                       for name, p in model.named_parameters()}
        models = [model] if self.hyperparameters == "mll" else self.sampled_models(model)
        pending = (self.tensor(np.stack([self.encode(p.arch) for p in self.pending]))
                   if self.pending else None)
        beta = (self.beta if self.beta_schedule == "constant"
                else srinivas_beta(len(self.observed) + 1, len(x), self.delta))
        per_model = []
        with torch.no_grad():
            for each in models:
                acq = acquisition_function(self.acquisition, each, float(train_y.max()) + self.xi,
                                           beta, self.mc_samples, seed, pending)
                per_model.append(torch.cat([acq(self.tensor(x[start:start + self.chunk])
                                                .unsqueeze(-2))
                                            for start in range(0, len(x), self.chunk)]))
        return combine_acquisitions(self.acquisition, torch.stack(per_model))

    def sampled_models(self, fitted: Any) -> list[Any]:
        """One GP per hyperparameter sample of a slice-sampling chain started at ``fitted``."""
        from archsearch.strategies.gp_hyperparameters import (
            HyperparameterPosterior,
            sample_hyperparameters,
        )

        rng = np.random.default_rng(int(self.rng.integers(2**31)))
        thetas = sample_hyperparameters(fitted, rng, self.mcmc["samples"],
                                        self.mcmc["burn_in"], self.mcmc["thin"],
                                        self.mcmc["width"])
        train_x, train_y = fitted.train_inputs[0], self.tensor(
            np.array([[v] for _, v in self.observed]))
        posterior = HyperparameterPosterior(fitted)
        return [posterior.load(gp_model(train_x, train_y), theta) for theta in thetas]

    @staticmethod
    def tensor(array: np.ndarray) -> Any:
        import torch

        return torch.as_tensor(np.asarray(array, dtype=np.float64))

    def observe(self, proposal: Proposal, result: Result) -> None:
        if result.ok:
            self.observed.append((proposal.arch.to_str(), float(result.objective)))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "observed": [list(o) for o in self.observed],
                "n_random": self.n_random, "hypers": self.hypers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.observed = [(a, float(v)) for a, v in state["observed"]]
        self.n_random = int(state["n_random"])
        hypers = state.get("hypers")
        self.hypers = None if hypers is None else {k: [float(v) for v in vs]
                                                   for k, vs in hypers.items()}
