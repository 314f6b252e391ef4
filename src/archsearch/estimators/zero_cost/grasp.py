"""GraSP (Wang et al., 2020) as a network score: -sum over conv/linear weights of w * (H g),
where g is the loss gradient (from the shared pass) and H g the exact Hessian-gradient product
by double back-propagation. (A finite-difference product is cheaper but, with ReLU kinks and
batch-statistics BatchNorm, ranked networks differently: Spearman -0.2 against the exact one.)"""

import torch
from torch.nn import functional as F

from archsearch.estimators.zero_cost.base import ProxyContext, logits_of, proxy, weighted_layers


@proxy("grasp")
def grasp(ctx: ProxyContext) -> float:
    g = [m.weight.grad for m in weighted_layers(ctx.loss_pass()["model"])]  # the shared pass's
    model = ctx.pristine()
    model.train()
    weights = [m.weight for m in weighted_layers(model)]
    loss = F.cross_entropy(logits_of(model(ctx.batch)), ctx.y)
    if not loss.requires_grad:
        return 0.0
    g2 = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    z = sum((a * b).sum() for a, b in zip(g2, g) if a is not None and b is not None)
    if not torch.is_tensor(z) or not z.requires_grad:
        return 0.0  # no path from weights to loss: nothing to prune, nothing to score
    hg = torch.autograd.grad(z, weights, allow_unused=True)
    with torch.no_grad():
        return float(sum(-(w * h).sum() for w, h in zip(weights, hg) if h is not None))
