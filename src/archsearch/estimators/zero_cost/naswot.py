"""NASWOT (Mellor et al., ICML 2021): the binary code of every ReLU's input (active or not) per
sample; K[i, j] = number of units where samples i and j agree (units minus Hamming distance),
summed over all ReLUs; score = log|det K|."""

import torch

from archsearch.estimators.zero_cost.base import ProxyContext, proxy


@proxy("naswot")
def naswot(ctx: ProxyContext) -> float:
    masks = ctx.jacobian_pass()["relu_masks"]
    n = ctx.x.shape[0]
    k = torch.zeros(n, n, dtype=torch.float64)
    for m in masks:
        if m.dim() < 2:
            continue
        c = m.flatten(1).float().cpu()  # (N, units) of 0/1
        active = c.sum(1)
        # agreements = both active + both inactive = units - a_i - a_j + 2 (c c^T)_ij; the
        # float32 products are exact integers (a layer has far fewer than 2^24 units)
        agree = 2 * (c @ c.T) - active[:, None] - active[None, :] + c.shape[1]
        k += agree.double()
    # a tiny ridge keeps degenerate networks (identical codes for all samples: K singular)
    # finite and last; it changes a well-conditioned K's log-determinant by ~1e-9
    ridge = 1e-9 * float(k.diagonal().mean().clamp_min(1.0)) * torch.eye(n, dtype=torch.float64)
    return float(torch.linalg.slogdet(k + ridge)[1])
