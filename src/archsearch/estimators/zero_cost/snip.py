"""SNIP (Lee et al., 2019) as a network score: sum over conv/linear weights of |w * dL/dw|."""

import torch

from archsearch.estimators.zero_cost.base import ProxyContext, proxy, weighted_layers


@proxy("snip")
def snip(ctx: ProxyContext) -> float:
    model = ctx.loss_pass()["model"]
    with torch.no_grad():
            return float(sum((m.weight * m.weight.grad).abs().sum() for m in weighted_layers(model)
                         if m.weight.grad is not None))
