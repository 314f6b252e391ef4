"""jacob_cov (Mellor et al., 2020, first version of "NAS without training"): the correlation
matrix of the per-sample input Jacobians of the summed logits; with its eigenvalues l,
score = -sum(log(l + k) + 1 / (l + k)), k = 1e-5. Less correlated Jacobians score higher."""

import torch

from archsearch.estimators.zero_cost.base import ProxyContext, correlation, proxy

K = 1e-5


@proxy("jacob_cov")
def jacob_cov(ctx: ProxyContext) -> float:
    corr = correlation(ctx.jacobian_pass()["jacobian"])
    eig = torch.linalg.eigvalsh(corr).clamp_min(0.0)
    return float(-(torch.log(eig + K) + 1.0 / (eig + K)).sum())
