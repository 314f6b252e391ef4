"""FLOPs (millions of conv + linear multiply-accumulates per image): a baseline beside the proxies."""

from archsearch.estimators.zero_cost.base import ProxyContext, proxy
from archsearch.nn.profile import count_flops_m


@proxy("flops")
def flops(ctx: ProxyContext) -> float:
    return count_flops_m(ctx.model, (1, *ctx.x.shape[1:]))
