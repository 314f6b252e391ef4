"""SynFlow (Tanaka et al., 2020) as a network score: data-free. Every weight replaced by its
absolute value, BatchNorm removed, float64; R = sum of the outputs for an all-ones input;
score = sum over conv/linear weights of |w * dR/dw|. Float64 because products over depth
overflow float32."""

import torch
from torch import nn

from archsearch.estimators.zero_cost.base import ProxyContext, logits_of, proxy, weighted_layers


def strip_batchnorm(model: nn.Module) -> nn.Module:
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, nn.Identity())
        else:
            strip_batchnorm(child)
    return model


@proxy("synflow")
def synflow(ctx: ProxyContext) -> float:
    model = strip_batchnorm(ctx.pristine()).double()
    model.eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    ones = torch.ones((1, *ctx.x.shape[1:]), dtype=torch.float64, device=ctx.x.device)
    out = logits_of(model(ones)).sum()
    if out.requires_grad:
        out.backward()
    with torch.no_grad():
        return float(sum((m.weight * m.weight.grad).abs().sum() for m in weighted_layers(model)
                         if m.weight.grad is not None))
