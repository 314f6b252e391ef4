"""Parameter count (millions): a baseline every report shows beside the proxies."""

from archsearch.estimators.zero_cost.base import ProxyContext, proxy
from archsearch.nn.ops import count_params_m


@proxy("params")
def params(ctx: ProxyContext) -> float:
    return count_params_m(ctx.model)
