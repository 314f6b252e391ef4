"""A fitted GP's marginal posterior at many candidates, and the analytic acquisitions on it.

GPyTorch predicts the joint posterior of the candidates it is given: for a (c, d) batch it
forms the c x c predictive covariance, for (c, 1, d) one GP per candidate over the train set
and that candidate (c matrices of (n + 1)^2). Scoring every one of the 15,625 NB201 cells with
a single-candidate acquisition needs only each candidate's mean and variance:

    mean(x) = m(x) + k(x, X) K^-1 (y - m(X)),    var(x) = k(x, x) - |L^-1 k(X, x)|^2,

with K = k(X, X) + noise I = L L^T on the model's standardised train outcomes, then mapped back
through the model's ``Standardize`` transform. The kernel, mean, noise and transform are the
model's own modules; only these two lines of algebra are done here (the latent posterior:
observation noise not added, as BoTorch's analytic acquisitions use it). Cost: one c x n kernel
block and a triangular solve, instead of c x c or c (n + 1)^2.

The acquisitions (values of one candidate, q = 1) are BoTorch's analytic ones on that mean and
deviation: log EI through BoTorch's numerically stable ``_log_ei_helper`` (Ament et al.,
NeurIPS 2023), PI = Phi(u), UCB = mean + sqrt(beta) sigma; tests check them against BoTorch's
``LogExpectedImprovement``, ``ProbabilityOfImprovement`` and ``UpperConfidenceBound``.
"""

from __future__ import annotations

import math
from typing import Any

MIN_VARIANCE = 1e-12  # a floor under the posterior variance (its rounding can go below 0)


def marginal_posterior(model: Any, x: Any) -> tuple[Any, Any]:
    """(c, d) candidates -> their posterior mean (c,) and standard deviation (c,) under a
    fitted SingleTaskGP with a ``Standardize`` outcome transform, in the outcome's units."""
    import torch
    from linear_operator.utils.cholesky import psd_safe_cholesky

    train_x = model.train_inputs[0]  # (n, d)
    n = train_x.shape[0]
    noise = model.likelihood.noise.reshape(-1)[0]
    K = model.covar_module(train_x).to_dense() + noise * torch.eye(n, dtype=train_x.dtype)
    L = psd_safe_cholesky(K)  # (n, n) lower
    residual = (model.train_targets - model.mean_module(train_x)).unsqueeze(-1)  # (n, 1)
    alpha = torch.cholesky_solve(residual, L)  # (n, 1): K^-1 (y - m(X))
    cross = model.covar_module(x, train_x).to_dense()  # (c, n)
    mean = model.mean_module(x) + (cross @ alpha).squeeze(-1)  # (c,)
    v = torch.linalg.solve_triangular(L, cross.T, upper=False)  # (n, c)
    variance = model.covar_module(x, diag=True) - (v * v).sum(0)  # (c,)
    scale = model.outcome_transform.stdvs.reshape(-1)[0]
    shift = model.outcome_transform.means.reshape(-1)[0]
    return mean * scale + shift, variance.clamp_min(MIN_VARIANCE).sqrt() * scale


class MarginalAcquisition:
    """An analytic single-candidate acquisition: called on (b, 1, d) candidates like BoTorch's
    acquisition functions, it returns their (b,) values."""

    def __init__(self, name: str, model: Any, best: float, beta: float) -> None:
        self.name, self.model, self.best, self.beta = name, model, best, beta

    def __call__(self, x: Any) -> Any:
        import torch
        from botorch.acquisition.analytic import _log_ei_helper

        mean, sd = marginal_posterior(self.model, x.squeeze(-2))
        if self.name == "ucb":
            return mean + math.sqrt(self.beta) * sd
        u = (mean - self.best) / sd
        if self.name == "ei":
            return _log_ei_helper(u) + sd.log()
        return torch.special.ndtr(u)
