"""grad_norm (Abdelfattah et al., 2021): the sum over layers of the Euclidean norm of the loss
gradient of each conv/linear weight, on one minibatch."""

import torch

from archsearch.estimators.zero_cost.base import ProxyContext, proxy, weighted_layers


@proxy("grad_norm")
def grad_norm(ctx: ProxyContext) -> float:
    model = ctx.loss_pass()["model"]
    with torch.no_grad():
            return float(sum(m.weight.grad.norm() for m in weighted_layers(model)
                         if m.weight.grad is not None))
