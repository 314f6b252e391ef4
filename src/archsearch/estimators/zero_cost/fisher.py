"""Fisher (Theis et al., 2018; as a NAS proxy by Abdelfattah et al., 2021): for every channel of
every conv/linear output, 0.5 * mean over the batch of (sum over positions of activation times
its loss gradient)^2, summed over channels and layers."""

import torch

from archsearch.estimators.zero_cost.base import ProxyContext, proxy


@proxy("fisher")
def fisher(ctx: ProxyContext) -> float:
    total = torch.zeros((), dtype=torch.float64, device=ctx.x.device)
    for act in ctx.loss_pass()["activations"]:
        if act.grad is None:
            continue
        prod = act.detach() * act.grad  # (N, C, H, W) or (N, C)
        per_channel = prod.flatten(2).sum(2) if prod.dim() > 2 else prod  # (N, C)
        total += 0.5 * per_channel.double().pow(2).mean(0).sum()
    return float(total)
